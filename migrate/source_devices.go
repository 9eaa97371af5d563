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

// deviceNodes lists the device nodes in the trees that ship, for the
// destination to decide on before anything is frozen (it takes those and
// no other). Overlay whiteouts (character devices 0:0) are not devices.
// The container runs meanwhile: what vanishes during the walk is skipped,
// and a node made after it fails the stream, with the container resumed.
func deviceNodes(trees []namedDir) ([]protocol.DeviceNode, error) {
	var out []protocol.DeviceNode
	for _, t := range trees {
		err := filepath.WalkDir(t.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if d.Type()&fs.ModeDevice == 0 {
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
			if len(out) == protocol.MaxDeviceNodes {
				return fmt.Errorf("%w: more than %d device nodes in its files", ErrCannotMove, protocol.MaxDeviceNodes)
			}
			out = append(out, protocol.DeviceNode{Stream: t.name, Path: rel, Block: block, Major: major, Minor: minor})
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("listing the device nodes of %s: %w", t.name, err)
		}
	}
	return out, nil
}
