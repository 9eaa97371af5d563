package migrate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockmove/dockmove/protocol"
)

// The destination's bind mount policy on a real directory tree: a shared
// path only below a base and with the source's marker in it, a copy below
// the first base at its source path, never through a symbolic link, never
// onto something.
func TestCheckBind(t *testing.T) {
	root := t.TempDir()
	base := filepath.Join(root, "binds")
	outside := filepath.Join(root, "outside")
	for _, d := range []string{base + "/app/conf", base + "/full", base + "/empty", base + "/shared", outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(base+"/full/x", []byte("x"), 0o644)
	os.WriteFile(base+"/file", []byte("x"), 0o644)
	os.Symlink(outside, base+"/link")
	marker := ".dockmove-shared-0123456789abcdef0123456789abcdef"
	os.WriteFile(base+"/shared/"+marker, []byte(marker), 0o600)
	os.Symlink(filepath.Join(outside, "m"), base+"/app/"+marker)
	os.WriteFile(filepath.Join(outside, "m"), []byte(marker), 0o600)

	cp := func(src string) protocol.BindSpec {
		return protocol.BindSpec{Source: src, Destination: "/data", Mode: protocol.BindCopy}
	}
	sh := func(src string) protocol.BindSpec {
		return protocol.BindSpec{Source: src, Destination: "/data", Mode: protocol.BindShared, Marker: marker}
	}
	bases := []string{base}
	for _, c := range []struct {
		name  string
		bases []string
		b     protocol.BindSpec
		want  string // "" accepted, at path
		path  string
	}{
		{"no base configured", nil, cp(base + "/new"), "accepts no bind mounts (migrate-dst --bind-base", ""},
		{"shared outside the base", bases, sh("/etc"), "outside the directories", ""},
		{"shared in a sibling sharing the prefix", bases, sh(base + "-evil/x"), "outside the directories", ""},
		{"copy from elsewhere lands below the base", bases, cp("/etc"), "", base + "/etc"},
		{"copy from a sibling sharing the prefix", bases, cp(base + "-evil/x"), "", base + base + "-evil/x"},
		{"copy to a new path", bases, cp(base + "/new/deep"), "", base + "/new/deep"},
		{"copy into an empty directory", bases, cp(base + "/empty"), "", base + "/empty"},
		{"copy onto contents", bases, cp(base + "/full"), "not an empty directory", ""},
		{"copy through a link", bases, cp(base + "/link/x"), "is a symbolic link", ""},
		{"copy below a file", bases, cp(base + "/file/x"), "is not a directory", ""},
		{"shared with the marker", bases, sh(base + "/shared"), "", base + "/shared"},
		{"shared without the marker", bases, sh(base + "/empty"), "not on storage shared with the source", base + "/empty"},
		{"shared, marker a link", bases, sh(base + "/app"), "not on storage shared with the source", base + "/app"},
		{"shared path missing", bases, sh(base + "/gone"), "does not exist on the destination", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := checkBind(c.bases, c.b)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if p != c.path {
				t.Fatalf("at %q, want %q", p, c.path)
			}
		})
	}

	made, err := makeBindDir(bases, cp(base+"/new/deep"))
	if err != nil || made != base+"/new" {
		t.Fatalf("made %q, %v; want the topmost new directory %s", made, err, base+"/new")
	}
	if fi, err := os.Stat(base + "/new/deep"); err != nil || !fi.IsDir() {
		t.Fatalf("not made: %v", err)
	}
	if made, err := makeBindDir(bases, cp(base+"/empty")); err != nil || made != "" {
		t.Fatalf("an existing directory: made %q, %v (a rollback would remove what was there)", made, err)
	}
	if _, err := makeBindDir(bases, cp(base+"/link/y")); err == nil {
		t.Fatal("made a directory through a symbolic link")
	}
	if _, err := os.Stat(filepath.Join(outside, "y")); err == nil {
		t.Fatal("a directory was made outside the base")
	}
}
