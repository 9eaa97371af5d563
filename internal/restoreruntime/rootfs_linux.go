package restoreruntime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
func mergeTree(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range ents {
		s, d := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		var ds unix.Stat_t
		derr := unix.Lstat(d, &ds)
		if e.IsDir() && derr == nil && ds.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := mergeTree(s, d); err != nil {
				return err
			}
			if err := copyDirAttrs(s, d); err != nil {
				return err
			}
			if err := os.Remove(s); err != nil {
				return err
			}
			continue
		}
		if derr == nil {
			if err := os.RemoveAll(d); err != nil {
				return err
			}
		}
		if err := os.Rename(s, d); err != nil {
			if errors.Is(err, unix.EXDEV) {
				return fmt.Errorf("the received writable layer (%s) and the container's (%s) are on different file systems: %w", src, dst, err)
			}
			return err
		}
	}
	return nil
}

// copyDirAttrs gives dst src's mode, owner and trusted.overlay.* attributes.
func copyDirAttrs(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := unix.Chmod(dst, st.Mode&07777); err != nil {
		return err
	}
	for _, attr := range []string{"trusted.overlay.opaque"} {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(src, attr, buf)
		switch {
		case err == nil:
			if err := unix.Lsetxattr(dst, attr, buf[:n], 0); err != nil {
				return err
			}
		case errors.Is(err, unix.ENODATA):
			unix.Lremovexattr(dst, attr)
		default:
			return err
		}
	}
	return nil
}
