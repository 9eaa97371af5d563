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

// outsideDir makes a directory beside the merge (the host's files a
// redirected merge would reach) and returns a check that it is still
// empty, with its mode, owner and no overlay mark.
func outsideDir(t *testing.T) (string, func()) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, func() {
		t.Helper()
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("written outside the upper directory: %v", ents)
		}
		var st unix.Stat_t
		if err := unix.Lstat(dir, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&07777 != 0o755 || st.Uid != 0 || st.Gid != 0 {
			t.Errorf("outside directory's mode or owner changed: %o %d:%d", st.Mode&07777, st.Uid, st.Gid)
		}
		if _, err := unix.Lgetxattr(dir, "trusted.overlay.opaque", make([]byte, 8)); !errors.Is(err, unix.ENODATA) {
			t.Errorf("outside directory's opaque mark: %v", err)
		}
	}
}

// receivedDir makes src/name a directory holding a file, with a mode, an
// owner and an opaque mark that a merge copies to the directory it merges
// into.
func receivedDir(t *testing.T, src, name string) {
	t.Helper()
	dir := filepath.Join(src, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("received"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(dir, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatalf("set opaque xattr (needs CAP_SYS_ADMIN and a file system with trusted xattrs): %v", err)
	}
	if err := os.Chown(dir, 1234, 1234); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o710); err != nil {
		t.Fatal(err)
	}
}

// A symlink where the received layer has a directory (at the top and one
// level down) or a file is replaced, never followed: nothing lands in, and
// no attribute is copied to, the directory it points at; a directory that
// a received file replaces is removed without following the symlinks it
// holds.
func TestMergeTreeReplacesPlantedSymlinks(t *testing.T) {
	labtest.RequireRoot(t)
	src, dst := t.TempDir(), t.TempDir()
	outside, check := outsideDir(t)
	hostFile := filepath.Join(t.TempDir(), "host-file")
	if err := os.WriteFile(hostFile, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	receivedDir(t, src, "a")
	receivedDir(t, src, filepath.Join("b", "c"))
	if err := os.WriteFile(filepath.Join(src, "x"), []byte("received"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "y"), []byte("received"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"b", "y"} {
		if err := os.Mkdir(filepath.Join(dst, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// y, a directory that a received file replaces, holds a symlink to the
	// host file's directory: removing y must not remove through it.
	links := map[string]string{"a": outside, "b/c": outside, "x": hostFile, "y/l": filepath.Dir(hostFile)}
	for link, target := range links {
		if err := os.Symlink(target, filepath.Join(dst, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := mergeTree(src, dst); err != nil {
		t.Fatal(err)
	}
	check()
	if data, err := os.ReadFile(hostFile); err != nil || string(data) != "host" {
		t.Errorf("host file: %q, %v", data, err)
	}
	for _, path := range []string{"a/f", "b/c/f", "x", "y"} {
		got, err := os.ReadFile(filepath.Join(dst, path))
		if err != nil || string(got) != "received" {
			t.Errorf("%s: %q, %v", path, got, err)
		}
	}
	for _, path := range []string{"a", "b/c"} {
		if fi, err := os.Lstat(filepath.Join(dst, path)); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o710 {
			t.Errorf("%s: %v, %v", path, fi, err)
		}
	}
}

// A directory present on both sides that a concurrent rename swaps for a
// symlink after the merge decided to enter it (the upper directory may be
// shared with a running container): the merge goes on in the directory it
// opened, wherever that is now within dst, and nothing is moved, chmod-ed,
// chown-ed or marked through the symlink.
func TestMergeTreeStaysInADirectorySwappedForASymlink(t *testing.T) {
	labtest.RequireRoot(t)
	src, dst := t.TempDir(), t.TempDir()
	outside, check := outsideDir(t)
	receivedDir(t, src, filepath.Join("a", "b"))
	if err := os.Chmod(filepath.Join(src, "a"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dst, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	swapped := 0
	testHookMergeDir = func(path string) {
		if path != filepath.Join(dst, "a") {
			return
		}
		swapped++
		if err := os.Rename(path, filepath.Join(dst, "moved")); err != nil {
			t.Error(err)
		}
		if err := os.Symlink(outside, path); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(func() { testHookMergeDir = nil })
	err := mergeTree(src, dst)
	if swapped != 1 {
		t.Fatalf("the hook swapped %d times, want 1", swapped)
	}
	check()
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dst, "moved", "b", "f")); err != nil || string(got) != "received" {
		t.Errorf("moved/b/f: %q, %v", got, err)
	}
	if fi, err := os.Lstat(filepath.Join(dst, "moved")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("moved: %v, %v", fi, err)
	}
}
