//go:build linux

package migrate

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/protocol"
)

// scanTree sums the sizes of the regular files under t.dir and lists its
// device nodes (at most max), for the destination to decide on before
// anything is frozen (it takes those and no other). Overlay whiteouts
// (character devices 0:0) are not devices. The container runs meanwhile:
// what vanishes during the walk is skipped, and a node made after it
// fails the stream, with the container resumed.
func scanTree(t namedDir, max int) (size int64, devs []protocol.DeviceNode, err error) {
	err = filepath.WalkDir(t.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		switch {
		case d.Type().IsRegular():
			if fi, err := d.Info(); err == nil {
				size = satAdd(size, fi.Size())
			}
			return nil
		case d.Type()&fs.ModeDevice == 0:
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return err
		}
		major, minor := unix.Major(st.Rdev), unix.Minor(st.Rdev)
		block := st.Mode&unix.S_IFMT == unix.S_IFBLK
		if !block && major == 0 && minor == 0 {
			return nil // a whiteout
		}
		rel, err := filepath.Rel(t.dir, p)
		if err != nil {
			return err
		}
		if len(devs) >= max {
			return fmt.Errorf("%w: more than %d device nodes in its files", ErrCannotMove, protocol.MaxDeviceNodes)
		}
		devs = append(devs, protocol.DeviceNode{Stream: t.name, Path: rel, Block: block, Major: major, Minor: minor})
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", t.name, err)
	}
	return size, devs, nil
}
