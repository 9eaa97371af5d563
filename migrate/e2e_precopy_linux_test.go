package migrate_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/criu"
	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/workload"
)

// Pre-copy on the lab's kernel. Where the kernel tracks dirty memory (the
// VM tier, make test-vm, proves the rounds themselves), auto picks hybrid;
// on this project's hosts it cannot, and says so.

func TestPrecopyRefusedBeforeFreezing(t *testing.T) {
	e := setup(t)
	caps, err := criu.Probe(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if caps.MemTrack {
		t.Skip("this kernel tracks dirty memory: pre-copy is not refused here (make test-vm covers it)")
	}
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	for _, strategy := range []string{"precopy", "hybrid"} {
		t.Run(strategy, func(t *testing.T) {
			name := unique(strategy)
			addr := runWorkload(t, ctx, e, name, lab.WorkloadImage)
			watch := watchBeats(t, ctx, addr, 20)
			before := waitBeat(t, ctx, addr, 0)
			_, stderr, err := runSrc(ctx, e, name, nil, "--strategy", strategy)
			watch.WaitBeats(ctx, watch.Stats().Beats+20)
			st := watch.Stop()
			failedMigration(t, ctx, e, name, addr, before, err, stderr, "mem_dirty_track")
			if !strings.Contains(stderr, "CONFIG_MEM_SOFT_DIRTY") {
				t.Errorf("the refusal does not name the kernel feature:\n%s", stderr)
			}
			// Never frozen: the heartbeat (every 10 ms) never paused for
			// anything like a dump.
			if st.MaxGap > 300*time.Millisecond || st.SeqBreaks != 0 || st.Resets != 0 {
				t.Fatalf("the container was disturbed: %+v", st)
			}
			assertHost2Clean(t, ctx, e, name, false)
		})
	}
}

func TestAutoExplainsWhyNoPrecopy(t *testing.T) {
	e := setup(t)
	caps, err := criu.Probe(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	name := unique("auto")
	addr := runWorkload(t, ctx, e, name, lab.WorkloadImage)
	before := waitBeat(t, ctx, addr, 0)
	rep, stderr, err := runSrc(ctx, e, name, nil, "--strategy", "auto")
	if err != nil {
		t.Fatalf("migration failed: %v\n%s", err, stderr)
	}
	want, reason := "lazy", "pre-copy skipped because the source's kernel cannot track dirty memory"
	if caps.MemTrack {
		want, reason = "hybrid", "pre-copy rounds"
	}
	if string(rep.Strategy) != want || !strings.Contains(rep.StrategyReason, reason) {
		t.Fatalf("auto chose %q (%s), want %q with a reason containing %q", rep.Strategy, rep.StrategyReason, want, reason)
	}
	if !strings.Contains(stderr, reason) {
		t.Errorf("the reason is not shown to the user:\n%s", stderr)
	}
	after, err := workload.Query(ctx, addr, workload.CmdVerify)
	if err != nil || after.Bad != 0 || !after.Continues(before) || after.Counter == before.Counter {
		t.Fatalf("after the migration: %+v, %v", after, err)
	}
	e.h2.Docker(ctx, "rm", "-f", name)
}

// TestProcessMigration moves a plain process tree (no container) from
// host1 to host2 with --pid: the workload runs as the init of its own PID
// namespace in host1's network namespace and answers on host2's address
// afterwards with its memory intact.
func TestProcessMigration(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e, "--allow-processes")
	port := "7123"
	cmd := e.h1.Command(context.Background(), filepath.Join(e.bin, "workload"), "--mem-mib", "64", "--listen", ":"+port, "--verify-every", "0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Setsid: true}
	// nsenter execs env, which execs the workload: the same process.
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	src := net.JoinHostPort(e.h1.Addr, port)
	before := waitBeat(t, ctx, src, 10)

	rep, stderr, err := runSrc(ctx, e, "", nil, "--pid", strconv.Itoa(cmd.Process.Pid), "--strategy", "auto")
	t.Logf("migrate-src:\n%s", stderr)
	if err != nil {
		t.Fatalf("process migration failed: %v", err)
	}
	if rep.Pid <= 0 || rep.ContainerID != "" {
		t.Fatalf("report: pid %d, container %q", rep.Pid, rep.ContainerID)
	}
	t.Cleanup(func() { syscall.Kill(rep.Pid, syscall.SIGKILL) })
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the original process still runs")
	}
	dst := net.JoinHostPort(e.h2.Addr, port)
	after, err := workload.Query(ctx, dst, workload.CmdVerify)
	if err != nil || after.Bad != 0 || !after.Continues(before) || after.Counter == before.Counter || after.Pages != 64<<20/4096 {
		t.Fatalf("on host2: %+v, %v (before %+v)", after, err, before)
	}
	// It runs in host2's network namespace, as the agents' host.
	link, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", rep.Pid))
	var ns syscall.Stat_t
	if err := syscall.Stat(e.h2.Netns, &ns); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("net:[%d]", ns.Ino); link != want {
		t.Errorf("restored in netns %q, host2's is %q", link, want)
	}
	if out, err := exec.Command("ls", filepath.Join(e.h2.WorkDir(), "processes")).Output(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("host2 kept the process's images: %q %v", out, err)
	}
}
