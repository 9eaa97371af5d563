package reserve

import (
	"os"
	"path/filepath"
	"testing"
)

// Install copies the running binary once: a second call with the same
// binary leaves the file (and a reservation running it) alone; a changed
// file is replaced by a rename, never rewritten in place.
func TestInstallCopiesOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "reserve")
	path, err := Install(dir)
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	a, _ := os.Stat(self)
	b, err := os.Stat(path)
	if err != nil || b.Size() != a.Size() || b.Mode().Perm() != 0o755 {
		t.Fatalf("installed %v, %v; want a copy of %s, mode 0755", b, err, self)
	}
	before, _ := os.Stat(path)
	if _, err := Install(dir); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if !os.SameFile(before, after) {
		t.Fatal("the same binary was installed again")
	}
	if err := os.WriteFile(path, []byte("old"), 0o755); err != nil {
		t.Fatal(err)
	}
	changed, _ := os.Stat(path)
	if _, err := Install(dir); err != nil {
		t.Fatal(err)
	}
	now, _ := os.Stat(path)
	if os.SameFile(changed, now) || now.Size() != a.Size() {
		t.Fatal("a changed binary was not replaced by a new file")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".dockmove-hold-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestNameIsADockerName(t *testing.T) {
	if got := Name("dmlab", "10.77.0.65"); got != "dockmove-reserve-dmlab-10.77.0.65" {
		t.Fatal(got)
	}
	if got := Value("dmlab", "10.77.0.65"); got != "dmlab/10.77.0.65" {
		t.Fatal(got)
	}
}
