package migrate

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestSweepStaleKeepsLiveWork: a directory locked by a running migration
// stays, one whose owner died (lock released) goes, a fresh unlocked one
// stays for a minute, an old unlocked one goes, other files stay.
func TestSweepStaleKeepsLiveWork(t *testing.T) {
	parent := t.TempDir()
	live, release, err := claimDir(parent, "dump-")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	// A killed owner leaves its directory and lock file, not the lock.
	dead := filepath.Join(parent, "image-dead")
	if err := os.Mkdir(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead, lockName), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(parent, "dump-fresh")
	old := filepath.Join(parent, "dump-old")
	other := filepath.Join(parent, "notes")
	for _, d := range []string{fresh, old, other} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * time.Minute)
	os.Chtimes(old, past, past)

	sweepStale(parent, slog.New(slog.NewTextHandler(io.Discard, nil)))

	for dir, want := range map[string]bool{live: true, dead: false, fresh: true, old: false, other: true} {
		_, err := os.Stat(dir)
		if exists := err == nil; exists != want {
			t.Errorf("%s: exists=%v, want %v", filepath.Base(dir), exists, want)
		}
	}
	release()
	if _, err := os.Stat(live); !os.IsNotExist(err) {
		t.Errorf("release left %s: %v", live, err)
	}
}
