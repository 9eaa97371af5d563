package predump

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/dockmove/dockmove/internal/criu"
)

// TestRoundsAskBeforeAndWatchWithFakes: Before's refusal ends the rounds
// before CRIU runs; a pre-dump whose watch expired ends them with
// ErrDeadline, whatever CRIU answered. CRIU is a path that does not
// exist, so reaching it fails at once.
func TestRoundsAskBeforeAndWatchWithFakes(t *testing.T) {
	base := Config{CRIU: filepath.Join(t.TempDir(), "no-criu"), Spec: criu.DumpSpec{Pid: 1}, Policy: Adaptive, Limits: DefaultLimits(),
		Ship: func(context.Context, int, string) (int64, int64, error) { t.Fatal("shipped a round"); return 0, 0, nil }}

	stopped := errors.New("a task is stopped")
	cfg := base
	cfg.Dir = t.TempDir()
	watched := 0
	cfg.Before = func(i int) error { return stopped }
	cfg.Watch = func(string) func() bool { watched++; return func() bool { return false } }
	if _, err := Run(context.Background(), cfg); !errors.Is(err, stopped) || watched != 0 {
		t.Fatalf("Before refused: %v, %d pre-dumps watched", err, watched)
	}

	cfg = base
	cfg.Dir = t.TempDir()
	var dirs []string
	cfg.Before = func(int) error { return nil }
	cfg.Watch = func(dir string) func() bool { dirs = append(dirs, dir); return func() bool { return true } }
	if _, err := Run(context.Background(), cfg); !errors.Is(err, ErrDeadline) || len(dirs) != 1 || dirs[0] != RoundDir(cfg.Dir, 1) {
		t.Fatalf("an expired pre-dump: %v, watched %q", err, dirs)
	}

	cfg.Dir = t.TempDir()
	cfg.Watch = func(string) func() bool { return func() bool { return false } }
	if _, err := Run(context.Background(), cfg); err == nil || errors.Is(err, ErrDeadline) {
		t.Fatalf("a pre-dump that failed in time: %v", err)
	}
}
