//go:build vmtest

package migrate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/workload"
)

// These run inside the VM tier (make test-vm), on the lab of two dockerds
// that scripts/vm.sh brings up there, with a kernel that tracks dirty
// memory: pre-copy and hybrid of a Docker container, restored through the
// restore runtime under Docker's management on host2.

func TestVMDockerPrecopy(t *testing.T) { vmDocker(t, "precopy", "precopy") }

func TestVMDockerHybrid(t *testing.T) { vmDocker(t, "auto", "hybrid") }

func vmDocker(t *testing.T, strategy, want string) {
	e := setup(t)
	ctx := ctxFor(t, 8*time.Minute)
	startDst(t, e)
	name := unique("vm-" + want)
	addr := runWorkloadMiB(t, ctx, e, name, lab.WorkloadImage, 32, 16)
	watch, err := workload.Watch(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.WaitBeats(ctx, 20); err != nil {
		t.Fatal(err)
	}
	before := waitBeat(t, ctx, addr, 0)
	rep, stderr, err := runSrc(ctx, e, name, nil, "--strategy", strategy)
	t.Logf("migrate-src:\n%s", stderr)
	if err != nil {
		t.Fatalf("migration failed: %v", err)
	}
	watch.WaitBeats(ctx, watch.Stats().Beats+20)
	st := watch.Stop()
	if rep.Strategy != want {
		t.Fatalf("strategy %q (%s), want %q", rep.Strategy, rep.StrategyReason, want)
	}
	pc := rep.PreCopy
	if pc == nil || len(pc.Rounds) < 2 {
		t.Fatalf("want at least 2 pre-copy rounds: %+v", pc)
	}
	r1, r2 := pc.Rounds[0], pc.Rounds[1]
	t.Logf("%s: %d rounds, round 1 wrote %d pages, round 2 %d; final dump %d written; post-copy %d bytes; freeze %s; heartbeat %+v",
		want, len(pc.Rounds), r1.PagesWritten, r2.PagesWritten, rep.Dump.PagesWritten, rep.PageBytes, rep.FreezeTime, st)
	if r2.PagesWritten*4 > r1.PagesWritten {
		t.Errorf("round 2 wrote %d pages, round 1 %d", r2.PagesWritten, r1.PagesWritten)
	}
	if st.SeqBreaks != 0 || st.Resets != 0 {
		t.Errorf("the heartbeat stream broke: %+v", st)
	}
	status, err := e.h2.Docker(ctx, "inspect", "-f", "{{.State.Status}} {{.HostConfig.Runtime}}", name)
	if err != nil || !strings.HasPrefix(status, "running dockmove") {
		t.Fatalf("on host2: %q %v", status, err)
	}
	if _, err := e.h1.Docker(ctx, "inspect", name); err == nil {
		t.Errorf("the original is still on host1")
	}
	after, err := workload.Query(ctx, addr, workload.CmdVerify)
	if err != nil || after.Bad != 0 || after.Counter <= before.Counter {
		t.Fatalf("after: %+v %v (before %+v)", after, err, before)
	}
}
