package criu

import (
	"os"
	"path/filepath"

	gocriu "github.com/checkpoint-restore/go-criu/v7"
	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"google.golang.org/protobuf/proto"
)

// ProcessRestore restores a plain process tree (dumped with
// DumpSpec.Process) from dir, detached from the caller, and returns the
// new PID of its root; the tree is left to the init process (or nearest
// subreaper) when CRIU exits. With lazy, memory not in the images comes from the
// lazy-pages daemon whose socket is in workDir.
type ProcessRestore struct {
	ImagesDir string
	WorkDir   string
	Lazy      bool
}

type restoreNotify struct {
	gocriu.NoNotify
	pid int
}

func (n *restoreNotify) PostRestore(pid int32) error {
	n.pid = int(pid)
	return nil
}

// Restore runs the restore with the criu binary at path ("" for PATH).
func (r ProcessRestore) Restore(path string) (int, error) {
	d, err := os.Open(r.ImagesDir)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	if err := os.MkdirAll(r.WorkDir, 0o700); err != nil {
		return 0, err
	}
	w, err := os.Open(r.WorkDir)
	if err != nil {
		return 0, err
	}
	defer w.Close()
	opts := &rpc.CriuOpts{
		ImagesDirFd:    proto.Int32(int32(d.Fd())),
		WorkDirFd:      proto.Int32(int32(w.Fd())),
		LogFile:        proto.String(RestoreLog),
		LogLevel:       proto.Int32(4),
		TcpEstablished: proto.Bool(true),
		ExtUnixSk:      proto.Bool(true),
		FileLocks:      proto.Bool(true),
		LazyPages:      proto.Bool(r.Lazy),
	}
	c := gocriu.MakeCriu()
	if path != "" {
		c.SetCriuPath(path)
	}
	n := &restoreNotify{}
	if err := c.Restore(opts, n); err != nil {
		return 0, NewError("restore", filepath.Join(r.WorkDir, RestoreLog), err)
	}
	return n.pid, nil
}
