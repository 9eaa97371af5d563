//go:build linux

package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/docker/docker/api/types/container"

	"github.com/dockmove/dockmove/protocol"
)

// localLog is where the local log driver keeps the current log, in the
// container's directory (moby: daemon/logger/local).
const localLog = "local-logs/container.log"

// logShipper carries a container's log files, so that `docker logs` on the
// destination shows its whole history: the files as they are before the
// freeze, then, frozen, what the current log gained since (or the whole
// set again if Docker rotated it meanwhile). Only json-file and local keep
// their files where this host can read them in a format every Docker
// reads; journald's history stays in this host's journal.
type logShipper struct {
	driver  string
	current string // the current log's path
	// Of the current log as shipped before the freeze:
	offset int64
	ino    uint64
}

// containerLogs finds the log files of container r, whose Docker keeps its
// data in dockerRoot: nil if its driver keeps none that ship; the files'
// size.
func containerLogs(r container.InspectResponse, dockerRoot string) (*logShipper, int64) {
	l := &logShipper{driver: r.HostConfig.LogConfig.Type}
	switch l.driver {
	case protocol.LogsJSONFile:
		l.current = r.LogPath
	case protocol.LogsLocal:
		// Docker does not report it (LogPath is "" on 20.10).
		l.current = filepath.Join(dockerRoot, "containers", r.ID, localLog)
	}
	if l.current == "" {
		return nil, 0
	}
	var size int64
	for _, p := range append([]string{l.current}, l.rotated()...) {
		if fi, err := os.Stat(p); err == nil {
			size = satAdd(size, fi.Size())
		}
	}
	return l, size
}

// rotated lists the rotated logs' paths, newest first (Docker names them
// current.1, current.2, ..., gzipped as current.N.gz with compress).
func (l *logShipper) rotated() []string {
	var out []string
	for n := 1; n <= protocol.MaxRotatedLogs; n++ {
		p := l.current + "." + strconv.Itoa(n)
		if _, err := os.Lstat(p); err == nil {
			out = append(out, p)
			continue
		}
		if _, err := os.Lstat(p + ".gz"); err == nil {
			out = append(out, p+".gz")
			continue
		}
		break
	}
	return out
}

// files copies the current log (all of it, or from offset on as the tail)
// and, unless tail, the rotated ones into dir, and records how much of the
// current log went.
func (l *logShipper) files(dir string, tail bool) error {
	f, err := os.Open(l.current)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino
	if tail && (ino != l.ino || fi.Size() < l.offset) {
		tail = false // rotated since: the whole set again
	}
	name, from := protocol.CurrentLog, int64(0)
	if tail {
		name, from = protocol.LogTail, l.offset
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return err
	}
	// Up to the size seen now: Docker may still be appending.
	if err := copyFile(filepath.Join(dir, name), io.LimitReader(f, fi.Size()-from)); err != nil {
		return err
	}
	l.offset, l.ino = fi.Size(), ino
	if tail {
		return nil
	}
	for i, p := range l.rotated() {
		src, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			break // rotated away meanwhile
		}
		if err != nil {
			return err
		}
		err = copyFile(filepath.Join(dir, protocol.RotatedLog(i+1, filepath.Ext(p) == ".gz")), src)
		src.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func copyFile(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// sendLogs ships the log files before the freeze (tail false) or, frozen,
// what the current log gained since.
func (s *source) sendLogs(ctx context.Context, tail bool) error {
	stream := protocol.StreamLogs
	if tail {
		stream = protocol.StreamLogsTail
	}
	return s.sendFiles(ctx, stream, func(dir string) error {
		if err := s.logs.files(dir, tail); err != nil {
			return fmt.Errorf("the container's logs: %w", err)
		}
		return nil
	})
}

// sendFiles ships as stream the files fill puts in a directory of its own.
func (s *source) sendFiles(ctx context.Context, stream string, fill func(dir string) error) error {
	claimed, release, err := claimDir(s.cfg.WorkDir, stream+"-")
	if err != nil {
		return err
	}
	defer release()
	dir := filepath.Join(claimed, stream) // beside the claim's lock
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if err := fill(dir); err != nil {
		return err
	}
	st, err := s.sess.SendDir(ctx, stream, dir)
	if err != nil {
		return fmt.Errorf("send %s: %w", stream, err)
	}
	s.report.stream(stream, st)
	return nil
}
