package transfer

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// entryFromInfo describes the file at full for a directory stream. skip is
// true for what cannot travel (sockets). id is set for files with more than
// one link, so the sender can send later names as hard links.
func entryFromInfo(full, rel string, fi fs.FileInfo) (e Entry, id fileID, skip bool, err error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Entry{}, fileID{}, false, fmt.Errorf("%s: no stat data", full)
	}
	e = Entry{
		Path:  rel,
		Mode:  uint32(fi.Mode().Perm()) | uint32(st.Mode&(unix.S_ISUID|unix.S_ISGID|unix.S_ISVTX)),
		UID:   st.Uid,
		GID:   st.Gid,
		MTime: st.Mtim.Nano(),
	}
	switch fi.Mode().Type() {
	case 0:
		e.Kind, e.Size = KindFile, uint64(fi.Size())
		if st.Nlink > 1 {
			id = fileID{dev: st.Dev, ino: st.Ino}
		}
	case fs.ModeDir:
		e.Kind = KindDirectory
	case fs.ModeSymlink:
		e.Kind = KindSymlink
		if e.Link, err = os.Readlink(full); err != nil {
			return Entry{}, fileID{}, false, err
		}
	case fs.ModeDevice | fs.ModeCharDevice:
		e.Kind, e.DevMajor, e.DevMinor = KindCharDev, unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case fs.ModeDevice:
		e.Kind, e.DevMajor, e.DevMinor = KindBlockDev, unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case fs.ModeNamedPipe:
		e.Kind = KindFifo
	default:
		return Entry{}, fileID{}, true, nil
	}
	e.Xattrs, err = readXattrs(full)
	return e, id, false, err
}

func readXattrs(path string) ([]Xattr, error) {
	size, err := unix.Llistxattr(path, nil)
	if err != nil || size == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			err = nil
		}
		return nil, err
	}
	names := make([]byte, size)
	if size, err = unix.Llistxattr(path, names); err != nil {
		return nil, err
	}
	var out []Xattr
	for _, name := range bytes.Split(names[:size], []byte{0}) {
		if len(name) == 0 {
			continue
		}
		val := make([]byte, maxXattrVal)
		n, err := unix.Lgetxattr(path, string(name), val)
		if err != nil {
			return nil, fmt.Errorf("%s: xattr %s: %w", path, name, err)
		}
		out = append(out, Xattr{Name: string(name), Value: val[:n]})
	}
	return out, nil
}

// setXattrsAt sets attributes on base in the directory dirfd, not
// following base if it is a symlink; the parent is reached through its
// descriptor, never by name.
func setXattrsAt(dirfd int, base string, xs []Xattr) error {
	p := fmt.Sprintf("/proc/self/fd/%d/%s", dirfd, base)
	for _, x := range xs {
		if err := unix.Lsetxattr(p, x.Name, x.Value, 0); err != nil {
			return fmt.Errorf("xattr %s: %w", x.Name, err)
		}
	}
	return nil
}

// fsetXattrs sets attributes on an open file.
func fsetXattrs(f *os.File, xs []Xattr) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var xerr error
	err = rc.Control(func(fd uintptr) {
		for _, x := range xs {
			if xerr = unix.Fsetxattr(int(fd), x.Name, x.Value, 0); xerr != nil {
				xerr = fmt.Errorf("xattr %s: %w", x.Name, xerr)
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return xerr
}

func mknodat(dirfd int, base string, e Entry) error {
	mode := e.Mode & 0o777
	switch e.Kind {
	case KindCharDev:
		mode |= unix.S_IFCHR
	case KindBlockDev:
		mode |= unix.S_IFBLK
	case KindFifo:
		mode |= unix.S_IFIFO
	}
	return unix.Mknodat(dirfd, base, mode, int(unix.Mkdev(e.DevMajor, e.DevMinor)))
}

// freeSpace is the space an unprivileged writer may still use on dir's
// file system.
func freeSpace(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * st.Bsize, nil
}
