//go:build !linux

package transfer

import (
	"errors"
	"io/fs"
	"os"
)

var errNotLinux = errors.New("transfer: special files and xattrs need Linux")

// entryFromInfo describes regular files, directories and symlinks; other
// systems carry no ownership, xattrs or devices.
func entryFromInfo(full, rel string, fi fs.FileInfo) (e Entry, id fileID, skip bool, err error) {
	e = Entry{Path: rel, Mode: uint32(fi.Mode().Perm()), MTime: fi.ModTime().UnixNano()}
	switch fi.Mode().Type() {
	case 0:
		e.Kind, e.Size = KindFile, uint64(fi.Size())
	case fs.ModeDir:
		e.Kind = KindDirectory
	case fs.ModeSymlink:
		e.Kind = KindSymlink
		e.Link, err = os.Readlink(full)
	default:
		return Entry{}, fileID{}, true, nil
	}
	return e, fileID{}, false, err
}

func setXattrsAt(dirfd int, base string, xs []Xattr) error {
	if len(xs) > 0 {
		return errNotLinux
	}
	return nil
}

func fsetXattrs(f *os.File, xs []Xattr) error {
	if len(xs) > 0 {
		return errNotLinux
	}
	return nil
}

func mknodat(dirfd int, base string, e Entry) error { return errNotLinux }

func freeSpace(dir string) (int64, error) { return 0, errNotLinux }
