package migrate_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/migrate"
	"github.com/dockmove/dockmove/protocol"
)

// TestCheckMovesNothing: `migrate-src check` says whether a container
// would move and how (strategy, sizes, image, address) with nothing
// frozen (no dump stage; the client's stream unbroken), locked or made on
// host2 (no container, volume or migration state); for a container host2
// would refuse it gives all of host2's reasons at once and fails. Its
// predicted freeze is within 2x of the migration that follows.
func TestCheckMovesNothing(t *testing.T) {
	e := setup(t)
	startDst(t, e)
	ctx := ctxFor(t, 2*time.Minute)
	name, vol := unique("check"), unique("vol")
	t.Cleanup(func() {
		for _, h := range []lab.Host{e.h1, e.h2} {
			cleanupDocker(h, "rm", "-f", name)
			cleanupDocker(h, "volume", "rm", "-f", vol)
		}
	})
	addr := runWorkload(t, ctx, e, name, lab.WorkloadImage, "-v", vol+":/vol")
	watch := watchBeats(t, ctx, addr, 10)

	run := lab.RunSource(ctx, e.h1, e.h2, e.bin, name, nil, "check")
	if run.Err != nil {
		t.Fatalf("check: %v\n%s", run.Err, run.Stderr)
	}
	var r migrate.Report
	if err := json.Unmarshal(run.Report, &r); err != nil {
		t.Fatal(err)
	}
	if c := r.Check; c == nil || c.Sizes.Memory < 64<<20 || c.ImageLayers == 0 || r.Strategy == "" || r.StrategyReason == "" || r.FreezeTime != 0 {
		t.Fatalf("check report: strategy %q (%s), freeze %v, check %+v", r.Strategy, r.StrategyReason, r.FreezeTime, r.Check)
	}
	for _, ev := range run.Events {
		if ev.Stage == "dump" || ev.Stage == "transfer" {
			t.Fatalf("check reached the %s stage", ev.Stage)
		}
	}
	if err := watch.WaitBeats(ctx, watch.Stats().Beats+10); err != nil {
		t.Fatal(err)
	}
	if s := watch.Stop(); s.SeqBreaks != 0 || s.Err != nil {
		t.Fatalf("the client's stream during the check: %+v", s)
	}
	if _, err := e.h2.Docker(ctx, "inspect", name); err == nil {
		t.Fatal("check made a container on host2")
	}
	if _, err := e.h2.Docker(ctx, "volume", "inspect", vol); err == nil {
		t.Fatal("check made a volume on host2")
	}
	if left, _ := os.ReadDir(filepath.Join(e.h2.WorkDir(), "migrations")); len(left) != 0 {
		t.Fatalf("check left migration state on host2: %s", entryNames(left))
	}

	// A name and a volume name host2 already uses: refused, with both of
	// host2's reasons at once.
	if _, err := e.h2.Docker(ctx, "create", "--pull", "never", "--name", name, "--network", e.h2.Network, lab.BusyboxImage, "true"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.h2.Docker(ctx, "volume", "create", vol); err != nil {
		t.Fatal(err)
	}
	run = lab.RunSource(ctx, e.h1, e.h2, e.bin, name, nil, "check")
	for _, want := range []string{"would not move", `a container named "` + name + `" already exists`, `volume "` + vol + `" already exists`} {
		if run.Err == nil || !strings.Contains(run.Stderr, want) {
			t.Fatalf("check of a container host2 refuses twice over: %v, want %q in:\n%s", run.Err, want, run.Stderr)
		}
	}
	if st, err := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name); err != nil || st != "running" {
		t.Fatalf("on host1 after the checks: %q, %v", st, err)
	}

	// The predicted freeze against the real one, once host2 takes it.
	for _, args := range [][]string{{"rm", "-f", name}, {"volume", "rm", vol}} {
		if _, err := e.h2.Docker(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}
	predicted := checkPrediction(t, ctx, e, name, protocol.StrategyStopAndCopy)
	r2, stderr, err := runSrc(ctx, e, name, nil)
	if err != nil {
		t.Fatalf("migration after the check: %v\n%s", err, stderr)
	}
	ratio := float64(r2.FreezeTime) / float64(predicted)
	t.Logf("predicted freeze %v, actual %v (x%.2f)", predicted, r2.FreezeTime, ratio)
	if ratio < 0.5 || ratio > 2 {
		t.Fatalf("the check predicted a freeze of %v, the migration froze %v: not within 2x", predicted, r2.FreezeTime)
	}
}

// checkPrediction returns the freeze that `migrate-src check` predicts for
// moving name by strategy, and checks that every strategy the lab's
// hosts cannot run says why. Without a migration by strategy in host1's
// history yet (a test run alone), one of a small container measures it.
func checkPrediction(t *testing.T, ctx context.Context, e env, name string, strategy protocol.Strategy) time.Duration {
	t.Helper()
	for warmed := false; ; warmed = true {
		run := lab.RunSource(ctx, e.h1, e.h2, e.bin, name, nil, "check")
		var r migrate.Report
		if err := json.Unmarshal(run.Report, &r); err != nil || run.Err != nil || r.Check == nil {
			t.Fatalf("check: %v, %v\n%s", run.Err, err, run.Stderr)
		}
		var p migrate.FreezePrediction
		for _, q := range r.Check.Predicted {
			if q.Strategy == strategy {
				p = q
			}
			if q.Freeze == 0 && q.Basis == "" && q.Unavailable == "" {
				t.Fatalf("prediction for %s says nothing: %+v", q.Strategy, q)
			}
		}
		if len(r.Check.Predicted) != len(protocol.Strategies) || p.Unavailable != "" {
			t.Fatalf("predictions: %+v", r.Check.Predicted)
		}
		if p.Freeze > 0 {
			t.Logf("check predicts %s: %v (%s)", strategy, p.Freeze, p.Basis)
			return p.Freeze
		}
		if warmed {
			t.Fatalf("no %s prediction after a %s migration: %+v", strategy, strategy, p)
		}
		warm := unique("warm")
		t.Cleanup(func() { cleanupDocker(e.h1, "rm", "-f", warm); cleanupDocker(e.h2, "rm", "-f", warm) })
		runWorkloadMiB(t, ctx, e, warm, lab.WorkloadImage, 16, 0)
		if _, stderr, err := runSrc(ctx, e, warm, nil, "--strategy", string(strategy)); err != nil {
			t.Fatalf("warm-up migration: %v\n%s", err, stderr)
		}
	}
}
