package migrate

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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

// Guard records are pruned by age and count, newest kept, and one written
// in the last hour is never removed. Real files with set times.
func TestPruneGuardRecordsKeepsRecentAndNewest(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	files := map[string]time.Duration{
		"a.json": 40 * 24 * time.Hour, // too old
		"a.log":  40 * 24 * time.Hour,
		"b.json": 3 * time.Hour, // beyond the newest 2 below, and older than an hour
		"c.log":  2 * time.Hour,
		"d.log":  90 * time.Minute,
		"e.log":  10 * time.Minute, // beyond the count, but its guard may be at work
		"notes":  50 * 24 * time.Hour,
	}
	for name, age := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	pruneGuardRecords(dir, 30*24*time.Hour, 2)
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if got, want := strings.Join(left, " "), "d.log e.log notes"; got != want {
		t.Fatalf("left %q, want %q", got, want)
	}
}

// A kill during writeFileAtomic leaves its temporary file: the source's
// next migration removes such files once they are a minute old (another
// migration may be writing one now), and nothing else.
func TestRemoveHalfWrittenKeepsWritesInProgress(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	for name, age := range map[string]time.Duration{
		tmpPrefix + "old.json123": 2 * time.Minute,
		tmpPrefix + "new.json456": time.Second,
		"old.json":                time.Hour,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	removeHalfWritten(dir, time.Minute)
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if got, want := strings.Join(left, " "), tmpPrefix+"new.json456 old.json"; got != want {
		t.Fatalf("left %q, want %q", got, want)
	}
}
