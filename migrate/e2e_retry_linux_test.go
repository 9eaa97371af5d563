package migrate_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
)

// TestDumpAgainAfterAMomentaryCause: a container whose process holds a
// Unix connection in flight (connected and written to, not yet accepted),
// which CRIU cannot dump. When the server accepts it a moment later (here
// when the test tells it to, between the first dump and the second), the
// dump is made again and the container moves, the report naming the first
// dump's cause. When it never does, the migration gives up after three
// dumps with CRIU's cause and the kept log, and the container runs on on
// host1 with nothing left on host2. Real CRIU, real dockerd.
func TestDumpAgainAfterAMomentaryCause(t *testing.T) {
	const cause = "Non-empty write queue on an in-flight socket"
	e := setup(t)
	startDst(t, e)
	t.Run("accepted a moment later", func(t *testing.T) {
		ctx := ctxFor(t, 3*time.Minute)
		name := unique("inflight")
		addr := runWorkloadWith(t, ctx, e, name, lab.WorkloadImage, 16, 100, nil, []string{"--unix-in-flight", "/tmp/app.sock", "--accept-on-signal"})
		before := waitBeat(t, ctx, addr, 0)
		pid, err := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Pid}}", name)
		if err != nil {
			t.Fatal(err)
		}
		// The second "dump" stage is the second attempt, announced before
		// its pause: the server accepts in between.
		dumps := 0
		report, stderr, err := runSrc(ctx, e, name, func(stage string, _ func()) {
			if stage == "dump" {
				if dumps++; dumps == 2 {
					exec.Command("kill", "-USR2", pid).Run()
				}
			}
		}, "--strategy", "stop-and-copy")
		if err != nil {
			t.Fatalf("migration failed: %v\n%s", err, stderr)
		}
		if len(report.DumpRetries) != 1 || !strings.Contains(report.DumpRetries[0], cause) {
			t.Fatalf("dump retries %q: want one, for %q", report.DumpRetries, cause)
		}
		if !strings.Contains(stderr, "dumped again after: ") {
			t.Errorf("migrate-src did not say it dumped again:\n%s", stderr)
		}
		if b := waitBeat(t, ctx, addr, before.Counter+1); b.Bad != 0 {
			t.Fatalf("on host2: %+v", b)
		}
		if out, _ := e.h1.Docker(ctx, "ps", "-aq", "--filter", "name=^/"+name+"$"); out != "" {
			t.Fatalf("host1 still has the container: %s", out)
		}
	})
	t.Run("never accepted", func(t *testing.T) {
		ctx := ctxFor(t, 3*time.Minute)
		name := unique("inflight")
		addr := runWorkloadWith(t, ctx, e, name, lab.WorkloadImage, 16, 100, nil, []string{"--unix-in-flight", "/tmp/app.sock"})
		before := waitBeat(t, ctx, addr, 0)
		report, stderr, err := runSrc(ctx, e, name, nil, "--strategy", "lazy")
		failedMigration(t, ctx, e, name, addr, before, err, stderr, cause)
		if len(report.DumpRetries) != 2 {
			t.Fatalf("dump retries %q: want two (three dumps in all)", report.DumpRetries)
		}
		assertNamedLogKept(t, stderr, cause)
		assertHost2Clean(t, ctx, e, name, true)
	})
}
