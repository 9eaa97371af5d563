//go:build linux

package migrate

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/dockmove/dockmove/internal/restoreruntime"
	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

// receiveInit stores the source's docker-init in the container's restore
// directory dir (source_init_linux.go says why it travels): one regular
// file of the announced size and digest, nothing else.
func (in *incoming) receiveInit(ctx context.Context, dir string) error {
	want := in.pre.Container.InitBinary
	target := filepath.Join(dir, restoreruntime.InitDir)
	p := imagePolicy()
	p.MaxEntries, p.MaxEntrySize, p.MaxTotalSize = 2, want.Size, want.Size
	if _, err := in.sess.ReceiveDir(ctx, protocol.StreamInit, target, p); err != nil {
		return fmt.Errorf("docker-init: %w", err)
	}
	entries, err := os.ReadDir(target)
	if err != nil {
		return err
	}
	if len(entries) != 1 || entries[0].Name() != protocol.InitFile || !entries[0].Type().IsRegular() {
		return fmt.Errorf("%w: the docker-init stream holds %v, not one file %s", transfer.ErrBadMessage, entries, protocol.InitFile)
	}
	// Checked and changed through one descriptor, never by path again.
	f, err := os.OpenFile(filepath.Join(target, protocol.InitFile), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: the docker-init received is not a regular file", transfer.ErrBadMessage)
	}
	got, err := digestOf(f)
	if err != nil {
		return fmt.Errorf("docker-init: %w", err)
	}
	if *got != *want {
		return fmt.Errorf("%w: the docker-init received (%s, %d bytes) is not the one announced (%s, %d bytes)", transfer.ErrBadMessage, got.SHA256, got.Size, want.SHA256, want.Size)
	}
	// The source's mode (CRIU checks it), without set-ID bits.
	return f.Chmod(fi.Mode().Perm())
}
