package migrate

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/criu"
)

// TestWatchPreDumpStopsAStuckCRIU: a process of this one named criu that
// holds a round's directory open and never ends (as CRIU does when it
// waits for a task it cannot seize) is killed once the deadline passes,
// and the watch reports it; a pre-dump that ends in time is left alone.
func TestWatchPreDumpStopsAStuckCRIU(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "round-1")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	stuck := filepath.Join(tmp, "criu") // its comm is "criu"
	if err := os.WriteFile(stuck, []byte("#!/bin/sh\nexec 9<\"$1\"\nwhile :; do sleep 0.05; done\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// The tree: a process in a network namespace of its own, where the
	// stop looks for CRIU's network lock.
	tree := exec.Command("unshare", "--net", "sleep", "60")
	if err := tree.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Process.Kill(); tree.Wait() })
	spec := criu.DumpSpec{Pid: tree.Process.Pid}

	cmd := exec.Command(stuck, dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	for deadline := time.Now().Add(5 * time.Second); !holdsOpen(cmd.Process.Pid, dir); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stand-in never opened the round's directory")
		}
	}
	expired := watchPreDump(dir, spec, 200*time.Millisecond, log)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the stuck pre-dump was not stopped")
	}
	if !expired() {
		t.Fatal("the watch did not report its deadline")
	}

	expired = watchPreDump(dir, spec, time.Hour, log)
	if expired() {
		t.Fatal("a pre-dump that ended in time reported as stopped")
	}
}
