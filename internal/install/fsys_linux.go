package install

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Every path install touches is walked from / one directory at a time
// with O_NOFOLLOW, and the file opened, replaced or removed relative to
// its directory's descriptor: a symbolic link anywhere on the way is
// refused, never followed, and nothing can swap a directory for a link
// between the check and the write.

// fileState is what a path holds.
type fileState struct {
	exists   bool
	data     []byte
	mode     fs.FileMode
	uid, gid int
}

// fileMeta is the mode and owner a file is written with; an owner of -1
// is the writer.
type fileMeta struct {
	perm     fs.FileMode
	uid, gid int
}

// openDir opens directory path. With made non-nil, missing directories
// are created (mode perm), each reported to made first; without, a
// missing one is fs.ErrNotExist.
func openDir(path string, perm fs.FileMode, made func(dir string) error) (*os.File, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("%w: %s is not absolute", ErrPath, path)
	}
	fd, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: "/", Err: err}
	}
	at := "/"
	for _, name := range strings.Split(filepath.Clean(path), "/")[1:] {
		if name == "" {
			continue
		}
		next := filepath.Join(at, name)
		nfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT && made != nil {
			if err = made(next); err == nil {
				err = mkdirAt(fd, name, perm)
			}
			if err == nil {
				nfd, err = unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
		}
		if err != nil {
			err = pathError(fd, name, next, err)
		}
		unix.Close(fd)
		if err != nil {
			return nil, err
		}
		fd, at = nfd, next
	}
	return os.NewFile(uintptr(fd), at), nil
}

// mkdirAt makes directory name in dir fd with exactly mode perm.
func mkdirAt(fd int, name string, perm fs.FileMode) error {
	if err := unix.Mkdirat(fd, name, uint32(perm.Perm())); err != nil {
		return err
	}
	return unix.Fchmodat(fd, name, uint32(perm.Perm()), 0)
}

// pathError explains an error on name in directory fd: a symbolic link
// is ErrSymlink.
func pathError(fd int, name, path string, err error) error {
	var st unix.Stat_t
	if unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return fmt.Errorf("%w: %s", ErrSymlink, path)
	}
	if err == unix.ENOTDIR {
		return fmt.Errorf("%w: %s is not a directory", ErrNotRegular, path)
	}
	return &fs.PathError{Op: "open", Path: path, Err: err}
}

// readFile reads the regular file at path; a missing file (or directory
// on the way) is a state that does not exist.
func readFile(path string) (fileState, error) {
	dir, err := openDir(filepath.Dir(path), 0, nil)
	if errors.Is(err, fs.ErrNotExist) {
		return fileState{}, nil
	} else if err != nil {
		return fileState{}, err
	}
	defer dir.Close()
	return readAt(dir, filepath.Base(path), path)
}

func readAt(dir *os.File, name, path string) (fileState, error) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err == unix.ENOENT {
		return fileState{}, nil
	} else if err != nil {
		return fileState{}, pathError(int(dir.Fd()), name, path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fileState{}, err
	}
	if !st.Mode().IsRegular() {
		return fileState{}, fmt.Errorf("%w: %s", ErrNotRegular, path)
	}
	data, err := io.ReadAll(f)
	sys := st.Sys().(*syscall.Stat_t)
	return fileState{exists: true, data: data, mode: st.Mode().Perm(), uid: int(sys.Uid), gid: int(sys.Gid)}, err
}

// writeFile replaces path with data (mode and owner meta) atomically: a temporary
// file in the same directory, synced, renamed over it, the directory
// synced. Missing directories are made with dirPerm, each reported to
// made first. A symbolic link or anything but a regular file at path is
// refused.
func writeFile(path string, data []byte, meta fileMeta, dirPerm fs.FileMode, made func(dir string) error) error {
	dir, err := openDir(filepath.Dir(path), dirPerm, made)
	if err != nil {
		return err
	}
	defer dir.Close()
	dfd, name := int(dir.Fd()), filepath.Base(path)
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG {
		return pathError(dfd, name, path, fmt.Errorf("%w: %s", ErrNotRegular, path))
	} else if err != nil && err != unix.ENOENT {
		return &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	tmp, err := createTemp(dfd, name)
	if err != nil {
		return &fs.PathError{Op: "create", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(tmp.fd), filepath.Join(filepath.Dir(path), tmp.name))
	_, err = f.Write(data)
	if err == nil && (meta.uid >= 0 || meta.gid >= 0) {
		err = f.Chown(meta.uid, meta.gid)
	}
	if err == nil {
		err = f.Chmod(meta.perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dfd, tmp.name, dfd, name)
	}
	if err != nil {
		unix.Unlinkat(dfd, tmp.name, 0)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return dir.Sync()
}

type tempFile struct {
	fd   int
	name string
}

// createTemp creates a new file next to name in directory dfd, never
// through a link (O_EXCL).
func createTemp(dfd int, name string) (tempFile, error) {
	for i := 0; ; i++ {
		tmp := fmt.Sprintf(".%s.dockmove-%d-%d", name, os.Getpid(), i)
		fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == unix.EEXIST && i < 100 {
			continue
		}
		return tempFile{fd: fd, name: tmp}, err
	}
}

// removeFile removes the regular file at path (gone already: nothing to
// do) and syncs its directory.
func removeFile(path string) error {
	dir, err := openDir(filepath.Dir(path), 0, nil)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	defer dir.Close()
	dfd, name := int(dir.Fd()), filepath.Base(path)
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == unix.ENOENT {
		return nil
	} else if err != nil {
		return &fs.PathError{Op: "stat", Path: path, Err: err}
	} else if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return pathError(dfd, name, path, fmt.Errorf("%w: %s", ErrNotRegular, path))
	}
	if err := unix.Unlinkat(dfd, name, 0); err != nil {
		return &fs.PathError{Op: "remove", Path: path, Err: err}
	}
	return dir.Sync()
}

// removeDir removes directory path if it is empty; empty reports whether
// it was (or was gone already).
func removeDir(path string) (empty bool, err error) {
	dir, err := openDir(filepath.Dir(path), 0, nil)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	defer dir.Close()
	switch err := unix.Unlinkat(int(dir.Fd()), filepath.Base(path), unix.AT_REMOVEDIR); err {
	case nil, unix.ENOENT:
		return true, dir.Sync()
	case unix.ENOTEMPTY, unix.EEXIST:
		return false, nil
	default:
		return false, pathError(int(dir.Fd()), filepath.Base(path), path, err)
	}
}
