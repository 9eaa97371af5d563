package migrate_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/migrate"
)

// TestCheckMovesNothing: `migrate-src check` says whether a container
// would move and how (strategy, sizes, image, address) with nothing
// frozen (no dump stage; the client's stream unbroken), locked or made on
// host2 (no container, volume or migration state); for a container host2
// would refuse it gives all of host2's reasons at once and fails.
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
}
