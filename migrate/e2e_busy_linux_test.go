package migrate_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/workload"
)

// TestBusyConnectionKeepsFlowing moves a container whose TCP connection is
// busy both ways at the freeze: each side writes as fast as it can and
// reads slowly, so both directions' send and receive queues are full (the
// test reads them in the container's /proc/net/tcp). After the move the
// connection must carry on both ways, every record in sequence, with
// either strategy.
func TestBusyConnectionKeepsFlowing(t *testing.T) {
	e := setup(t)
	for _, strategy := range []string{"stop-and-copy", "lazy"} {
		t.Run(strategy, func(t *testing.T) { busyConnection(t, e, strategy) })
	}
}

func busyConnection(t *testing.T, e env, strategy string) {
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	name := unique("busy")
	addr := runWorkloadMiB(t, ctx, e, name, lab.WorkloadImage, 16, 0)
	fl, err := workload.StartFlood(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Stop()
	second := uint64(workload.FloodReadRate / 16) // records read in a second
	flowing := func(when string, within time.Duration) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		if err := fl.WaitFlowing(wctx, second); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
	}
	flowing("before the move", 20*time.Second)
	var tx, rx uint64 // the fullest seen in a few samples: a read burst empties the receive queue for an instant
	for i := 0; i < 5; i++ {
		a, b := queues(t, ctx, e.h1, name)
		tx, rx = max(tx, a), max(rx, b)
	}
	t.Logf("before the move: send queue up to %d bytes, receive queue up to %d bytes", tx, rx)
	if tx < 64<<10 || rx < 64<<10 {
		t.Fatalf("the connection's queues are not full: send %d, receive %d bytes", tx, rx)
	}
	if _, stderr, err := runSrc(ctx, e, name, nil, "--strategy", strategy); err != nil {
		t.Fatalf("migration: %v\n%s", err, stderr)
	}
	flowing("after the move", 30*time.Second)
	if s := fl.Stop(); s.Err != nil {
		t.Fatalf("the flood: %+v", s)
	}
	if v, err := workload.Query(ctx, addr, workload.CmdVerify); err != nil || v.Bad != 0 {
		t.Fatalf("after the move: %+v, %v", v, err)
	}
}

// queues reads the send and receive queues of the container's established
// connections on the workload's port, summed, from /proc/net/tcp{,6}.
func queues(t *testing.T, ctx context.Context, h lab.Host, name string) (tx, rx uint64) {
	t.Helper()
	out, err := h.Docker(ctx, "exec", name, "cat", "/proc/net/tcp", "/proc/net/tcp6") // Go listens dual-stack
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprintf(":%04X", lab.WorkloadPort)
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasSuffix(f[1], port) || f[3] != "01" {
			continue
		}
		q, r, _ := strings.Cut(f[4], ":")
		a, _ := strconv.ParseUint(q, 16, 64)
		b, _ := strconv.ParseUint(r, 16, 64)
		tx, rx = tx+a, rx+b
	}
	return tx, rx
}
