package transfer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTestBundle(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tls")
	if err := WriteBundle(dir, []BundleHost{{Name: "host1", SANs: []string{"127.0.0.1"}}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCredentialsAreLoadedOnlyWhenPrivateAndSingleCA(t *testing.T) {
	dir := writeTestBundle(t)
	files := HostTLSFiles(filepath.Join(dir, "host1"))
	if _, err := files.Server(); err != nil {
		t.Fatalf("a fresh bundle: %v", err)
	}
	st, _ := os.Stat(files.Key)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key written with mode %04o", st.Mode().Perm())
	}

	os.Chmod(files.Key, 0o644)
	if _, err := files.Client(); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("a world-readable key was loaded: %v", err)
	}
	os.Chmod(files.Key, 0o600)

	// A second CA in ca.pem would let its holders in.
	other := writeTestBundle(t)
	extra, _ := os.ReadFile(filepath.Join(other, "ca.pem"))
	ca, _ := os.ReadFile(files.CA)
	os.WriteFile(files.CA, append(ca, extra...), 0o600)
	if _, err := files.Server(); err == nil || !strings.Contains(err.Error(), "2 certificates") {
		t.Fatalf("a CA file with two certificates was loaded: %v", err)
	}
}

func TestCredentialsAreNeverWrittenThroughALinkOrOverAFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("keep"), 0o644)
	if err := os.MkdirAll(filepath.Join(dir, "host1"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A planted link where host1's key will go.
	if err := os.Symlink(victim, filepath.Join(dir, "host1", "key.pem")); err != nil {
		t.Fatal(err)
	}
	if err := WriteBundle(dir, []BundleHost{{Name: "host1"}}); err == nil {
		t.Fatal("the bundle was written through a planted symlink")
	}
	if data, _ := os.ReadFile(victim); string(data) != "keep" {
		t.Fatalf("the link's target was overwritten: %q", data)
	}
}
