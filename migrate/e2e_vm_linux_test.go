//go:build vmtest

package migrate_test

import (
	"os"
	"strconv"
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
	addr := runWorkloadMiB(t, ctx, e, name, lab.WorkloadImage, vmMiB(), 16)
	watch := watchBeats(t, ctx, addr, 20)
	before := waitBeat(t, ctx, addr, 0)
	rep, stderr, err := runSrc(ctx, e, name, nil, "--strategy", strategy)
	t.Logf("migrate-src:\n%s", stderr)
	if err != nil {
		t.Fatalf("migration failed: %v", err)
	}
	watch.WaitBeats(ctx, watch.Stats().Beats+20)
	st := watch.Stop()
	if string(rep.Strategy) != want {
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
	if want == "hybrid" {
		// Only what the last round missed follows by post-copy: host2's
		// lazy-pages daemon asks for a small part of the memory, not for
		// the pages the rounds already brought.
		total := int64(vmMiB()) << 20 / int64(os.Getpagesize())
		p := rep.PostCopy
		if p == nil || (p.FaultPages+p.BackgroundPages)*4 > total {
			t.Errorf("hybrid's post-copy asked for more than a quarter of the %d pages: %+v", total, p)
		} else {
			t.Logf("hybrid's post-copy: %+v of %d pages", *p, total)
		}
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
	if err != nil || after.Bad != 0 || !after.Continues(before) || after.Counter == before.Counter {
		t.Fatalf("after: %+v %v (before %+v)", after, err, before)
	}
}

// Exactly once with pre-copy: a failure during the rounds (the container
// was never frozen for longer than a page collection) leaves it running
// on host1 with its state, and host2 with nothing.

func TestVMDockerPrecopyDestinationKilledDuringRounds(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 8*time.Minute)
	d := startDst(t, e)
	name := unique("vm-dstkill")
	addr := runWorkloadMiB(t, ctx, e, name, lab.WorkloadImage, 32, 16)
	before := waitBeat(t, ctx, addr, 0)
	killed := false
	_, stderr, err := runSrc(ctx, e, name, func(stage string, _ func()) {
		if stage == "round 1" && !killed {
			d.Kill()
			killed = true
		}
	}, "--strategy", "precopy", "--precopy-policy", "phaul")
	if !killed {
		t.Fatalf("migrate-src never finished a round:\n%s", stderr)
	}
	failedMigration(t, ctx, e, name, addr, before, err, stderr, "was not migrated")
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	assertHost2Clean(t, ctx, e, name, true)
}

func TestVMDockerPrecopySourceKilledDuringRounds(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 8*time.Minute)
	startDst(t, e)
	name := unique("vm-srckill")
	addr := runWorkloadMiB(t, ctx, e, name, lab.WorkloadImage, 32, 16)
	before := waitBeat(t, ctx, addr, 0)
	killed := false
	_, stderr, err := runSrc(ctx, e, name, func(stage string, kill func()) {
		if stage == "round 1" && !killed {
			kill()
			killed = true
		}
	}, "--strategy", "precopy", "--precopy-policy", "phaul")
	if !killed || err == nil {
		t.Fatalf("migrate-src was not killed after round 1 (%v):\n%s", err, stderr)
	}
	after := waitBeat(t, ctx, addr, before.Counter+10)
	if v, err := workload.Query(ctx, addr, workload.CmdVerify); err != nil || v.Bad != 0 {
		t.Fatalf("host1's container after the kill: %+v, %v (before %+v, after %+v)", v, err, before, after)
	}
	waitGoneFromHost2(t, ctx, e, name, 30*time.Second)
	assertHost2Clean(t, ctx, e, name, true)
}

// vmMiB is the workload's size: 32 MiB, or DOCKMOVE_VM_MIB.
func vmMiB() int {
	if n, err := strconv.Atoi(os.Getenv("DOCKMOVE_VM_MIB")); err == nil && n > 0 {
		return n
	}
	return 32
}
