package criu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeptLogsOutliveTheRunAndStayBounded: a failed run's log is copied
// where it outlives the run's directory, the error names the copy, and
// the directory keeps only the newest KeptLogs.
func TestKeptLogsOutliveTheRunAndStayBounded(t *testing.T) {
	run, kept := t.TempDir(), filepath.Join(t.TempDir(), "failed")
	for i := range KeptLogs + 3 {
		log := filepath.Join(run, "dump.log")
		os.WriteFile(log, []byte(fmt.Sprintf("(00.1) Error (criu/x.c:1): failure %d\n", i)), 0o600)
		err := fmt.Errorf("migration: %w", NewError("dump", log, errors.New("rpc")))
		KeepLog(err, kept)
		os.Remove(log) // the rollback removes the run's directory
		var ce *Error
		errors.As(err, &ce)
		data, rerr := os.ReadFile(ce.LogPath)
		if rerr != nil || !strings.Contains(string(data), fmt.Sprintf("failure %d", i)) || filepath.Dir(ce.LogPath) != kept {
			t.Fatalf("run %d: the error names %s (%q, %v)", i, ce.LogPath, data, rerr)
		}
		if !strings.Contains(ce.Error(), ce.LogPath) {
			t.Fatalf("the message does not name the kept log: %s", ce.Error())
		}
	}
	logs, _ := filepath.Glob(filepath.Join(kept, "*.log"))
	if len(logs) != KeptLogs {
		t.Fatalf("%d logs kept, want %d", len(logs), KeptLogs)
	}
	KeepLog(errors.New("not CRIU's"), kept) // nothing to keep, no panic
}
