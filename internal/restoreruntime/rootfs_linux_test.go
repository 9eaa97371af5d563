package restoreruntime

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/internal/lab/labtest"
)

// The received writable layer lands in the container's upper directory:
// new entries move in, a file replaces what was there, a directory on both
// sides is merged and keeps the received layer's opaque mark (which hides
// the image's own contents of that directory). Real files and xattrs.
func TestMergeTreeMovesTheLayerIntoTheUpperDirectory(t *testing.T) {
	labtest.RequireRoot(t)
	src, dst := t.TempDir(), t.TempDir()
	mk := func(path, data string) {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk(filepath.Join(dst, "etc", "docker-made"), "kept")
	mk(filepath.Join(dst, "y"), "old file")
	mk(filepath.Join(src, "etc", "app.conf"), "moved")
	mk(filepath.Join(src, "y", "now-a-dir"), "dir replaces file")
	mk(filepath.Join(src, "data", "note"), "written-before")
	if err := unix.Lsetxattr(filepath.Join(src, "etc"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatalf("set opaque xattr (needs CAP_SYS_ADMIN and a file system with trusted xattrs): %v", err)
	}
	os.Chmod(filepath.Join(src, "etc"), 0o710)
	// A whiteout: a 0/0 character device (a file deleted in the layer).
	if err := unix.Mknod(filepath.Join(src, "gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	if err := mergeTree(src, dst); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"etc/docker-made": "kept", "etc/app.conf": "moved", "y/now-a-dir": "dir replaces file", "data/note": "written-before"} {
		got, err := os.ReadFile(filepath.Join(dst, path))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v", path, got, err)
		}
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(dst, "etc"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque mark on etc: %q, %v", buf[:n], err)
	}
	if fi, _ := os.Stat(filepath.Join(dst, "etc")); fi.Mode().Perm() != 0o710 {
		t.Errorf("etc mode %v", fi.Mode().Perm())
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dst, "gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout: %+v, %v", st, err)
	}
	if ents, _ := os.ReadDir(src); len(ents) != 0 {
		t.Errorf("left in the staging directory: %v", ents)
	}
}

func TestMergeTreeNamesACrossFileSystemMove(t *testing.T) {
	labtest.RequireRoot(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), nil, 0o644)
	dst, err := os.MkdirTemp("/dev/shm", "merge-") // tmpfs: another file system than the temp dir's
	labtest.SkipUnless(t, err == nil, "a tmpfs at /dev/shm")
	defer os.RemoveAll(dst)
	var a, b unix.Stat_t
	unix.Stat(src, &a)
	unix.Stat(dst, &b)
	labtest.SkipUnless(t, a.Dev != b.Dev, "a temp dir on another file system than /dev/shm")
	err = mergeTree(src, dst)
	if !errors.Is(err, unix.EXDEV) {
		t.Fatalf("want EXDEV named, got %v", err)
	}
}
