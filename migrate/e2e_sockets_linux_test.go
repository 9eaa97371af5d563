package migrate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/workload"
)

// TestMultipathTCPRefusedBeforeFreezing: a Go service built with Go 1.24
// or later listens with Multipath TCP where the kernel has it (the
// workload, with GODEBUG=multipathtcp=1 in its environment, does so
// whatever it was built with), and CRIU cannot dump an MPTCP socket: the
// dump used to fail with the container frozen. `migrate-src check` names
// the socket (with host2's reasons) and a migration is refused
// before freezing, saying what to do; the client's stream runs on
// unbroken, and host2 keeps nothing.
func TestMultipathTCPRefusedBeforeFreezing(t *testing.T) {
	e := setup(t)
	startDst(t, e)
	ctx := ctxFor(t, 2*time.Minute)
	name := unique("mptcp")
	addr := runWorkloadWith(t, ctx, e, name, lab.WorkloadImage, 64, 500, []string{"-e", "GODEBUG=multipathtcp=1"}, nil)
	watch := watchBeats(t, ctx, addr, 10)
	const holds = "1 inside) holds a Multipath TCP socket"

	// check names it, together with host2's own reason (a name taken).
	if _, err := e.h2.Docker(ctx, "create", "--pull", "never", "--name", name, "--network", e.h2.Network, lab.BusyboxImage, "true"); err != nil {
		t.Fatal(err)
	}
	run := lab.RunSource(ctx, e.h1, e.h2, e.bin, name, nil, "check")
	for _, want := range []string{"would not move", `a container named "` + name + `" already exists`, "and on this host", holds, "GODEBUG=multipathtcp=0"} {
		if run.Err == nil || !strings.Contains(run.Stderr, want) {
			t.Fatalf("check: %v, want %q in:\n%s", run.Err, want, run.Stderr)
		}
	}
	if _, err := e.h2.Docker(ctx, "rm", name); err != nil {
		t.Fatal(err)
	}

	before, err := workload.Query(ctx, addr, workload.CmdStatus)
	if err != nil {
		t.Fatal(err)
	}
	report, stderr, err := runSrc(ctx, e, name, nil)
	t.Logf("check said:\n%s\nmigrate-src said:\n%s", run.Stderr, stderr)
	failedMigration(t, ctx, e, name, addr, before, err, stderr, holds)
	if _, frozen := report.Stages["dump"]; frozen {
		t.Fatalf("the container was frozen before the refusal: stages %v", report.Stages)
	}
	assertHost2Clean(t, ctx, e, name, true)
	if err := watch.WaitBeats(ctx, watch.Stats().Beats+10); err != nil {
		t.Fatal(err)
	}
	if s := watch.Stop(); s.SeqBreaks != 0 || s.Err != nil {
		t.Fatalf("the client's stream: %+v", s)
	}
}
