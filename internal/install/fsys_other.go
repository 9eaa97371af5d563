//go:build !linux

package install

import (
	"errors"
	"io/fs"
	"os"
)

// Install walks paths with Linux's *at calls; elsewhere it refuses.

var errUnsupported = errors.New("install: only on Linux")

type fileState struct {
	exists   bool
	data     []byte
	mode     fs.FileMode
	uid, gid int
}

type fileMeta struct {
	perm     fs.FileMode
	uid, gid int
}

func openDir(string, fs.FileMode, func(string) error) (*os.File, error) {
	return nil, errUnsupported
}

func readFile(string) (fileState, error) { return fileState{}, errUnsupported }

func writeFile(string, []byte, fileMeta, fs.FileMode, func(string) error) error {
	return errUnsupported
}

func removeFile(string) error { return errUnsupported }

func removeDir(string) (bool, error) { return false, errUnsupported }
