package migrate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/workload"
)

// stopSleeper starts a process in container name on host1 and stops it
// (SIGSTOP, as a job stopped in a shell); it returns its PID inside.
func stopSleeper(t *testing.T, ctx context.Context, e env, name string) string {
	t.Helper()
	pid, err := e.h1.Docker(ctx, "exec", name, "sh", "-c", "sleep 600 >/dev/null 2>&1 & kill -STOP $!; echo $!")
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// TestStoppedProcessRefusedBeforeFreezing: CRIU cannot dump a stopped
// task (it waits for it forever with the container frozen), so host1
// refuses before freezing, naming the process.
func TestStoppedProcessRefusedBeforeFreezing(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 2*time.Minute)
	startDst(t, e)
	name := unique("stopped")
	addr := runWorkload(t, ctx, e, name, lab.WorkloadImage)
	pid := stopSleeper(t, ctx, e, name)
	watch := watchBeats(t, ctx, addr, 20)
	_, stderr, err := runSrc(ctx, e, name, nil)
	if err == nil || !strings.Contains(stderr, ", "+pid+" inside) is stopped") {
		t.Fatalf("want a refusal naming the stopped process (%s inside): %v\n%s", pid, err, stderr)
	}
	if err := watch.WaitBeats(ctx, watch.Stats().Beats+10); err != nil {
		t.Fatal(err)
	}
	if s := watch.Stop(); s.MaxGap > 300*time.Millisecond || s.SeqBreaks != 0 {
		t.Fatalf("the container paused: %+v", s)
	}
	assertHost2Clean(t, ctx, e, name, true)
}

// TestDumpDeadlineThawsTheContainer stops a process after host1's check,
// just before CRIU freezes the container, so that CRIU hangs: the dump's
// deadline ends CRIU, and the container runs on with its state.
func TestDumpDeadlineThawsTheContainer(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	name := unique("hang")
	addr := runWorkload(t, ctx, e, name, lab.WorkloadImage)
	before := waitBeat(t, ctx, addr, 0)
	onStage, stopped := atStage("dump", func(func()) {
		stopSleeper(t, ctx, e, name)
	})
	_, stderr, err := runSrc(ctx, e, name, onStage, "--pause-at", "dump", "--pause-for", "2s", "--dump-timeout", "10s")
	if !stopped() {
		t.Fatalf("migrate-src never reached the dump:\n%s", stderr)
	}
	failedMigration(t, ctx, e, name, addr, before, err, stderr, "did not finish in time")
	after := waitBeat(t, ctx, addr, before.Counter+5)
	if v, err := workload.Query(ctx, addr, workload.CmdVerify); err != nil || v.Bad != 0 {
		t.Fatalf("after the deadline: %+v, %v (counter %d)", v, err, after.Counter)
	}
	assertNoNetworkLock(t, ctx, e, name)
	waitGoneFromHost2(t, ctx, e, name, 30*time.Second)
	assertHost2Clean(t, ctx, e, name, true)
}

// TestExecProcessRefusedBeforeFreezing: a process that docker exec started
// is not in the tree of the container's init, which is all CRIU dumps: it
// would end with the original. host1 refuses while one runs, naming it
// (also one started as the freeze nears), and the container moves once it
// has ended.
func TestExecProcessRefusedBeforeFreezing(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 2*time.Minute)
	dst := startDst(t, e)
	name := unique("exec")
	addr := runWorkload(t, ctx, e, name, lab.WorkloadImage)
	if _, err := e.h1.Docker(ctx, "exec", "-d", name, "sh", "-c", "echo $$ > /tmp/exec.pid; exec sleep 600"); err != nil {
		t.Fatal(err)
	}
	before := waitBeat(t, ctx, addr, 0)
	_, stderr, err := runSrc(ctx, e, name, nil)
	failedMigration(t, ctx, e, name, addr, before, err, stderr, `processes started by docker exec run in it: "sleep 600"`)
	assertHost2Clean(t, ctx, e, name, true)
	// host2 heard why, rather than an end of stream.
	if log := dst.Log(); !strings.Contains(log, "processes started by docker exec") {
		t.Errorf("migrate-dst's log does not name the source's refusal:\n%s", log)
	}
	kill := func() {
		t.Helper()
		if _, err := e.h1.Docker(ctx, "exec", name, "sh", "-c", "kill $(cat /tmp/exec.pid)"); err != nil {
			t.Fatal(err)
		}
	}
	kill()
	// One started after that check, as the freeze nears, is frozen with
	// the container but not in the dump: seen once the dump is made, it
	// fails the dump, and the container resumes here.
	onStage, started := atStage("dump", func(func()) {
		if _, err := e.h1.Docker(ctx, "exec", "-d", name, "sh", "-c", "echo $$ > /tmp/exec.pid; exec sleep 601"); err != nil {
			t.Error(err)
		}
	})
	_, stderr, err = runSrc(ctx, e, name, onStage, "--pause-at", "dump", "--pause-for", "2s")
	if !started() {
		t.Fatalf("migrate-src never reached the dump:\n%s", stderr)
	}
	failedMigration(t, ctx, e, name, addr, before, err, stderr, "sleep 601")
	assertHost2Clean(t, ctx, e, name, true)
	kill()
	if _, stderr, err := runSrc(ctx, e, name, nil); err != nil {
		t.Fatalf("once the exec's process ended: %v\n%s", err, stderr)
	}
	if v := waitBeat(t, ctx, addr, before.Counter); v.Bad != 0 {
		t.Fatalf("on host2: %+v", v)
	}
}
