package migrate_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
)

// TestLogsHistoryMoves: `docker logs` on host2 shows the container's whole
// history, every line once and in order, for json-file (rotated while it
// ran, so the rotated files travel too) and local, with each strategy. The
// container prints a numbered line every 50 ms throughout the move, so a
// line lost or doubled at the freeze shows as a gap or a repeat.
func TestLogsHistoryMoves(t *testing.T) {
	e := setup(t)
	for _, c := range []struct {
		name, strategy string
		logOpts        []string
	}{
		{"json-file-rotated/stop-and-copy", "stop-and-copy", []string{"--log-driver", "json-file", "--log-opt", "max-size=2k", "--log-opt", "max-file=50"}},
		{"local/lazy", "lazy", []string{"--log-driver", "local"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := ctxFor(t, 3*time.Minute)
			startDst(t, e)
			name := unique("logs")
			runIdleCmd(t, ctx, e, name, append([]string{"--network", e.h1.Network}, c.logOpts...),
				"i=0; while true; do i=$((i+1)); echo line $i; sleep 0.05; done")
			// About 40 lines of 60 bytes in each json-file of 2 KiB: a few
			// rotations before the move.
			for len(logLines(t, ctx, e.h1, name)) < 120 {
				time.Sleep(100 * time.Millisecond)
			}
			first := logLines(t, ctx, e.h1, name)[0]
			if _, stderr, err := runSrc(ctx, e, name, nil, "--strategy", c.strategy); err != nil {
				t.Fatalf("migration failed: %v\n%s", err, stderr)
			}
			time.Sleep(500 * time.Millisecond) // lines printed on host2 too
			lines := logLines(t, ctx, e.h2, name)
			if len(lines) == 0 || lines[0] != first {
				t.Fatalf("docker logs on host2 begins with line %v, on host1 it began with line %d", lines[:min(1, len(lines))], first)
			}
			for i := 1; i < len(lines); i++ {
				if lines[i] != lines[i-1]+1 {
					t.Fatalf("docker logs on host2: line %d follows line %d (of %d lines from %d)", lines[i], lines[i-1], len(lines), first)
				}
			}
			if last := lines[len(lines)-1]; last < 130 {
				t.Fatalf("docker logs on host2 ends at line %d: nothing printed there after the move", last)
			}
			t.Logf("host2's docker logs: lines %d to %d, none lost or doubled", first, lines[len(lines)-1])
		})
	}
}

// logLines returns the numbers of the "line N" lines `docker logs` shows.
func logLines(t *testing.T, ctx context.Context, h lab.Host, name string) []int {
	t.Helper()
	out, err := h.Docker(ctx, "logs", name)
	if err != nil {
		t.Fatal(err)
	}
	var nums []int
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "line "); ok {
			n, err := strconv.Atoi(rest)
			if err != nil {
				t.Fatalf("docker logs line %q", l)
			}
			nums = append(nums, n)
		}
	}
	return nums
}
