// Package atomicfile writes state files that a crash leaves whole: the old
// content or the new one, never a part.
package atomicfile

import (
	"os"
	"path/filepath"
)

// TmpPrefix begins the name of a file Write is writing. A crash can leave
// one behind: whoever reads the directory again may remove it.
const TmpPrefix = ".tmp-"

// Write replaces path with data (mode perm): written to a temporary file
// in path's directory (made if need be), synced, renamed over path, and
// the directory synced.
func Write(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, TmpPrefix+filepath.Base(path))
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
