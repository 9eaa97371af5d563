package migrate

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/dockmove/dockmove/protocol"
)

// Bind mounts of host paths reach this host only below the directories
// its operator names (migrate-dst --bind-base): a source that asks for
// /etc or / would otherwise hand its container the host. A shared bind
// keeps its path, which must lie below a base; a copied one lands below
// the first base, at its source path (/srv/app -> BASE/srv/app), unless
// it already lies below a base (a container moving back keeps its path).
// Below a base, nothing is resolved through a symbolic link: every
// existing component must be a real directory, so a link planted there
// cannot lead out.

// bindBase returns the base p lies in, or "".
func bindBase(bases []string, p string) string {
	for _, b := range bases {
		b = filepath.Clean(b)
		if p == b || strings.HasPrefix(p, b+"/") {
			return b
		}
	}
	return ""
}

// walkBelow checks the components of p below base that exist: each a
// directory, none a symbolic link. It returns the first that does not
// exist ("" when p exists).
func walkBelow(base, p string) (missing string, err error) {
	cur := base
	for _, part := range strings.Split(strings.TrimPrefix(p, base), "/") {
		if part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return cur, nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return "", fmt.Errorf("%s is a symbolic link on the destination; refusing to follow it", cur)
		}
		if !fi.IsDir() && cur != p {
			return "", fmt.Errorf("%s is not a directory on the destination", cur)
		}
	}
	return "", nil
}

// bindPath is where bind mount b lives on this host, and the base it lies
// below.
func bindPath(bases []string, b protocol.BindSpec) (path, base string, err error) {
	if len(bases) == 0 {
		return "", "", fmt.Errorf("bind mount %s (%s): this destination accepts no bind mounts (migrate-dst --bind-base DIR accepts them below DIR)", b.Destination, b.Source)
	}
	if base = bindBase(bases, b.Source); base != "" {
		return b.Source, base, nil
	}
	if b.Mode == protocol.BindShared {
		return "", "", fmt.Errorf("bind mount %s (%s) is outside the directories this destination accepts shared bind mounts in (%s)", b.Destination, b.Source, strings.Join(bases, ", "))
	}
	base = filepath.Clean(bases[0])
	return filepath.Join(base, b.Source), base, nil
}

// checkBind refuses a bind mount this destination cannot honour (outside
// its bases, a copy onto a path that holds something, a shared path whose
// marker is not found here) and says where it lives here.
func checkBind(bases []string, b protocol.BindSpec) (string, error) {
	p, base, err := bindPath(bases, b)
	if err != nil {
		return "", err
	}
	missing, err := walkBelow(base, p)
	if err != nil {
		return "", fmt.Errorf("bind mount %s: %w", b.Destination, err)
	}
	switch b.Mode {
	case protocol.BindCopy:
		if missing != "" {
			return p, nil // made with the container
		}
		if empty, err := emptyDir(p); err != nil || !empty {
			return "", fmt.Errorf("bind mount %s: %s exists on the destination and is not an empty directory; refusing to mix its contents (%v)", b.Destination, p, err)
		}
		return p, nil
	case protocol.BindShared:
		if missing != "" {
			return "", fmt.Errorf("bind mount %s: %s does not exist on the destination, so it is not on storage shared with the source", b.Destination, p)
		}
		return p, checkMarker(b)
	}
	return "", fmt.Errorf("bind mount %s: unknown mode %q", b.Destination, b.Mode)
}

// checkMarker reads, through this host's path, the marker the source wrote
// through its own.
func checkMarker(b protocol.BindSpec) error {
	dir := b.Source
	if fi, err := os.Lstat(dir); err == nil && !fi.IsDir() {
		dir = filepath.Dir(dir)
	}
	p := filepath.Join(dir, b.Marker)
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	var got []byte
	if err == nil {
		got, err = io.ReadAll(io.LimitReader(f, int64(len(b.Marker))+1))
		f.Close()
	}
	if err != nil || string(got) != b.Marker {
		return fmt.Errorf("bind mount %s: %s is not on storage shared with the source: the marker the source wrote there is not readable here (%v)", b.Destination, b.Source, err)
	}
	return nil
}

// emptyDir reports whether dir is a directory with nothing in it.
func emptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if errors.Is(err, io.EOF) {
		return true, nil
	}
	return len(names) == 0, err
}

// makeBindDir creates the directory of copied bind mount b here and
// returns the topmost directory it created ("" if it existed), which a
// rollback removes.
func makeBindDir(bases []string, b protocol.BindSpec) (string, error) {
	p, base, err := bindPath(bases, b)
	if err != nil {
		return "", err
	}
	// Checked again: the path may have changed since the preflight.
	missing, err := walkBelow(base, p)
	if err != nil || missing == "" {
		return "", err
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return "", err
	}
	return missing, nil
}
