//go:build linux

package migrate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dockmove/dockmove/protocol"
)

// initMount is where Docker binds its docker-init into an --init container
// (moby: daemon/oci_linux.go), the same on every release.
const initMount = "/sbin/docker-init"

// An --init container's PID 1 maps the docker-init of its host's Docker.
// CRIU restores that mapping only from the same file (it checks the size
// and build ID), and Docker releases ship different ones (tini 0.19 of
// bookworm's Docker 20.10 is 708080 bytes, trixie's Docker 28's 752504).
// So the source sends its own, read through the running process, and the
// destination's restore runtime binds that copy where Docker would bind
// its own. A later `docker restart` on the destination uses the
// destination's docker-init, as for any container created there.

// initDigest reads the docker-init that process pid (the container's PID
// 1) runs.
func initDigest(pid int) (*protocol.FileDigest, error) {
	if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err != nil || exe != initMount {
		return nil, fmt.Errorf("the container runs --init, but its PID 1 runs %q, not %s (%v)", exe, initMount, err)
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return nil, fmt.Errorf("reading the container's docker-init: %w", err)
	}
	defer f.Close()
	return digestOf(f)
}

func digestOf(r io.Reader) (*protocol.FileDigest, error) {
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, protocol.MaxInitBinary+1))
	if err != nil {
		return nil, err
	}
	if n > protocol.MaxInitBinary {
		return nil, fmt.Errorf("the container's docker-init is larger than %d bytes", protocol.MaxInitBinary)
	}
	return &protocol.FileDigest{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// sendInit ships the container's docker-init, which must still be the one
// described by want.
func (s *source) sendInit(ctx context.Context, want *protocol.FileDigest) error {
	r, err := s.dk.Inspect(ctx, s.tgt.containerID())
	if err != nil {
		return err
	}
	if r.State == nil || !r.State.Running {
		return fmt.Errorf("%w: it stopped during the preflight", ErrCannotMove)
	}
	return s.sendFiles(ctx, protocol.StreamInit, func(dir string) error {
		return copyInit(r.State.Pid, dir, want)
	})
}

// copyInit copies the docker-init that process pid runs into dir, checking
// that it is still the one described by want.
func copyInit(pid int, dir string, want *protocol.FileDigest) error {
	src, err := os.Open(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return fmt.Errorf("reading the container's docker-init: %w", err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return err
	}
	path := filepath.Join(dir, protocol.InitFile)
	dst, err := os.Create(path)
	if err != nil {
		return err
	}
	got, err := digestOf(io.TeeReader(src, dst))
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// CRIU checks the mode of a mapped file too: the copy keeps it.
		err = os.Chmod(path, fi.Mode().Perm())
	}
	if err != nil {
		return fmt.Errorf("copying the container's docker-init: %w", err)
	}
	if *got != *want {
		return fmt.Errorf("the container's docker-init changed since the preflight (%s, %d bytes; was %s, %d bytes)", got.SHA256, got.Size, want.SHA256, want.Size)
	}
	return nil
}
