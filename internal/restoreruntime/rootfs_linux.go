package restoreruntime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/internal/mountinfo"
)

// placeRootfs moves the writable layer received in layer into the
// upper directory of the overlay mounted at the container's root (Docker
// with the containerd image store mounts it itself, at
// DATA-ROOT/rootfs/overlayfs/ID, just before `create`). Nothing has looked
// into the fresh mount yet (runc has not run), so the overlay has cached
// nothing the move could contradict.
func placeRootfs(layer, root string) error {
	table, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	rootfs, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	upper, err := mountinfo.OverlayUpper(table, rootfs)
	if err != nil {
		return fmt.Errorf("the container's root filesystem: %w", err)
	}
	return mergeTree(layer, upper)
}

// mergeTree moves every entry of src into dst by rename (one file system),
// replacing what dst holds at the same path, except that a directory
// present on both sides is merged and takes src's mode, owner and overlay
// attributes (an opaque directory stays opaque). src is left empty.
//
// Below the two roots, every step acts relative to an open descriptor of
// the directory it works in, and enters a directory by opening one name
// without following a symlink: dst may be shared with a running container,
// which can rename a directory or swap a symlink in while the merge runs,
// and a path walked again would then lead outside dst.
func mergeTree(src, dst string) error {
	s, err := openRootDir(src)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := openRootDir(dst)
	if err != nil {
		return err
	}
	defer d.Close()
	return mergeDir(s, d)
}

// testHookMergeDir, nil outside tests, runs once mergeTree has opened a
// directory of dst to merge into and before it does: the window in which a
// concurrent rename could swap that directory for a symlink.
var testHookMergeDir func(path string)

// mergeDir moves every entry of src into dst (see mergeTree).
func mergeDir(src, dst *dirFD) error {
	names, err := src.names()
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := mergeEntry(src, dst, name); err != nil {
			return err
		}
	}
	return nil
}

// mergeEntry moves src's entry name into dst: merged if both sides hold a
// directory, else by rename over whatever dst held. Whether dst holds a
// directory is decided by opening it (no symlink followed), not by a
// look that a swap could contradict before the merge enters it.
func mergeEntry(src, dst *dirFD, name string) error {
	var st unix.Stat_t
	if err := ignoringEINTR(func() error { return unix.Fstatat(src.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return src.err("fstatat", name, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		d, err := dst.openDir(name)
		if err == nil {
			defer d.Close()
			return mergeSubdir(src, name, d)
		}
		if !notADir(err) {
			return err
		}
	}
	if err := removeAllAt(dst, name); err != nil {
		return err
	}
	err := ignoringEINTR(func() error { return unix.Renameat(src.fd, name, dst.fd, name) })
	if errors.Is(err, unix.EXDEV) {
		return fmt.Errorf("the received writable layer (%s) and the container's (%s) are on different file systems: %w", src.path, dst.path, err)
	}
	if err != nil {
		return src.err("renameat", name, err)
	}
	return nil
}

// mergeSubdir merges src's directory name into dst, an open directory,
// gives dst its attributes and removes it from src.
func mergeSubdir(src *dirFD, name string, dst *dirFD) error {
	if testHookMergeDir != nil {
		testHookMergeDir(dst.path)
	}
	s, err := src.openDir(name)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := mergeDir(s, dst); err != nil {
		return err
	}
	if err := copyDirAttrs(s, dst); err != nil {
		return err
	}
	if err := ignoringEINTR(func() error { return unix.Unlinkat(src.fd, name, unix.AT_REMOVEDIR) }); err != nil {
		return src.err("unlinkat", name, err)
	}
	return nil
}

// copyDirAttrs gives dst src's mode, owner and trusted.overlay.* attributes,
// through their descriptors.
func copyDirAttrs(src, dst *dirFD) error {
	var st unix.Stat_t
	if err := unix.Fstat(src.fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: src.path, Err: err}
	}
	if err := unix.Fchown(dst.fd, int(st.Uid), int(st.Gid)); err != nil {
		return &os.PathError{Op: "fchown", Path: dst.path, Err: err}
	}
	if err := unix.Fchmod(dst.fd, st.Mode&07777); err != nil {
		return &os.PathError{Op: "fchmod", Path: dst.path, Err: err}
	}
	for _, attr := range []string{"trusted.overlay.opaque"} {
		buf := make([]byte, 64)
		n, err := unix.Fgetxattr(src.fd, attr, buf)
		switch {
		case err == nil:
			if err := unix.Fsetxattr(dst.fd, attr, buf[:n], 0); err != nil {
				return &os.PathError{Op: "fsetxattr", Path: dst.path, Err: err}
			}
		case errors.Is(err, unix.ENODATA):
			unix.Fremovexattr(dst.fd, attr)
		default:
			return &os.PathError{Op: "fgetxattr", Path: src.path, Err: err}
		}
	}
	return nil
}

// removeAllAt removes dir's entry name and, if it is a directory, all it
// holds, entering each directory by descriptor (no symlink followed). A
// missing entry is not an error.
func removeAllAt(dir *dirFD, name string) error {
	err := ignoringEINTR(func() error { return unix.Unlinkat(dir.fd, name, 0) })
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) {
		return dir.err("unlinkat", name, err)
	}
	sub, err := dir.openDir(name)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer sub.Close()
	names, err := sub.names()
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := removeAllAt(sub, n); err != nil {
			return err
		}
	}
	err = ignoringEINTR(func() error { return unix.Unlinkat(dir.fd, name, unix.AT_REMOVEDIR) })
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return dir.err("unlinkat", name, err)
	}
	return nil
}

// dirFD is an open directory; path, the way it was first reached, only
// names it in errors (the directory may have moved since).
type dirFD struct {
	f    *os.File
	fd   int
	path string
}

// openRootDir opens one of the merge's two roots, which come from the
// restore's own configuration, not from the tree.
func openRootDir(path string) (*dirFD, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	return &dirFD{f: f, fd: int(f.Fd()), path: path}, nil
}

// openDir opens d's entry name if it is a directory, without following a
// symlink: a symlink fails with ELOOP, another file with ENOTDIR. name is
// one component (a directory entry), so O_NOFOLLOW covers the whole walk.
func (d *dirFD) openDir(name string) (*dirFD, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return nil, d.err("openat", name, unix.EINVAL)
	}
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, d.err("openat", name, err)
	}
	path := filepath.Join(d.path, name)
	return &dirFD{f: os.NewFile(uintptr(fd), path), fd: fd, path: path}, nil
}

// names lists d's entries, sorted (as os.ReadDir does).
func (d *dirFD) names() ([]string, error) {
	names, err := d.f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

func (d *dirFD) Close() error { return d.f.Close() }

// err names the failed operation on d's entry name.
func (d *dirFD) err(op, name string, err error) error {
	return &os.PathError{Op: op, Path: filepath.Join(d.path, name), Err: err}
}

// notADir reports whether opening a directory failed because the entry is
// missing, a symlink or another kind of file: the merge then replaces it.
func notADir(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP)
}

// ignoringEINTR retries fn while a signal interrupts it.
func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
