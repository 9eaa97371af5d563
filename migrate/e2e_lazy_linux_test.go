package migrate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/workload"
)

// TestLazyMigration256MiB moves 256 MiB by post-copy: the container restarts
// on host2 before its memory arrives; afterwards every page verifies, the
// counter continued, and it keeps running once the source agent is gone.
func TestLazyMigration256MiB(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	name := unique("lazy")
	addr := runWorkloadMiB(t, ctx, e, name, lab.WorkloadImage, 256, 500)
	before := waitBeat(t, ctx, addr, 0)
	report, stderr, err := runSrc(ctx, e, name, nil, "--strategy", "lazy")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	t.Logf("lazy 256 MiB: freeze %v, memory complete %v after the restart, %d bytes of pages", report.FreezeTime, report.MemoryTime, report.PageBytes)
	if report.PageBytes < 256<<20 || report.MemoryTime <= 0 {
		t.Fatalf("report: %+v", report)
	}
	// migrate-src has exited: the container no longer depends on host1.
	for range 3 {
		b, err := workload.Query(ctx, addr, workload.CmdVerify)
		if err != nil || b.Bad != 0 || b.Pages != 256<<20/workload.PageSize || b.Counter < before.Counter {
			t.Fatalf("after post-copy: %+v, %v (before %+v)", b, err, before)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name); st != "running" {
		t.Fatalf("on host2: %q", st)
	}
	assertHost2Clean(t, ctx, e, name, false)
}

// TestLazyLinkCutDuringPostCopy cuts the agents' link while memory is still
// arriving. The documented outcome: the source's CRIU loses its page
// client and resumes the original with its memory; host2 removes the copy
// that cannot continue; migrate-src exits non-zero saying so.
func TestLazyLinkCutDuringPostCopy(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 4*time.Minute)
	startDst(t, e)
	name := unique("cut")
	addr := runWorkloadMiB(t, ctx, e, name, lab.WorkloadImage, 1024, 500)
	before := waitBeat(t, ctx, addr, 0)
	rules := [][]string{
		{"OUTPUT", "-d", e.h2.Addr, "-p", "tcp", "--dport", dstPort, "-j", "DROP"},
		{"INPUT", "-s", e.h2.Addr, "-p", "tcp", "--sport", dstPort, "-j", "DROP"},
	}
	cut := func() {
		for _, r := range rules {
			if out, err := e.h1.Command(ctx, "iptables", append([]string{"-I"}, r...)...).CombinedOutput(); err != nil {
				t.Errorf("cut link: %v: %s", err, out)
			}
		}
	}
	t.Cleanup(func() {
		for _, r := range rules {
			e.h1.Command(context.Background(), "iptables", append([]string{"-D"}, r...)...).Run()
		}
	})
	var cutDone bool
	_, stderr, err := runSrc(ctx, e, name, func(line string, _ func()) {
		if strings.HasSuffix(line, "] post-copy") && !cutDone {
			cutDone = true
			cut()
		}
	}, "--strategy", "lazy")
	if !cutDone {
		t.Fatalf("migration never reached post-copy (err %v):\n%s", err, stderr)
	}
	if err == nil || !strings.Contains(stderr, "post-copy failed") || !strings.Contains(stderr, "resumed on this host") {
		t.Fatalf("migrate-src did not report the failed post-copy: %v\n%s", err, stderr)
	}
	after := waitBeat(t, ctx, addr, before.Counter)
	if v, err := workload.Query(ctx, addr, workload.CmdVerify); err != nil || v.Bad != 0 || v.Pages != 1<<30/workload.PageSize {
		t.Fatalf("host1's container after the cut: %+v, %v (counter %d -> %d)", v, err, before.Counter, after.Counter)
	}
	if st, _ := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name); st != "running" {
		t.Fatalf("on host1: %q", st)
	}
	// host2 notices the dead link (keepalive) and removes its copy.
	waitGoneFromHost2(t, ctx, e, name, 90*time.Second)
	assertHost2Clean(t, ctx, e, name, true)
}
