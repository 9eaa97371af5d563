package migrate_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/metrics"
	"github.com/dockmove/dockmove/internal/metrics/metricstest"
	"github.com/dockmove/dockmove/internal/workload"
)

// soakMovesEnv sets how many moves TestSoakBackAndForth makes (make soak:
// 100; CI runs the default).
const soakMovesEnv = "DOCKMOVE_SOAK_MOVES"

// TestSoakBackAndForth moves one container between host1 and host2 again
// and again, stop-and-copy and lazy in turn, while a client holds a TCP
// connection to it: after every move its memory verifies, its counter
// continued and the connection still streams. Both hosts' migrate-dst run
// throughout; after the first round trip their descriptors, memory and
// goroutines are measured, and they must not grow with the moves, nor may
// the agents' work directories keep anything.
func TestSoakBackAndForth(t *testing.T) {
	moves := 10
	if v := os.Getenv(soakMovesEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 4 {
			t.Fatalf("%s=%q: want a number of moves, at least 4", soakMovesEnv, v)
		}
		moves = n
	}
	e := setup(t)
	back := env{h1: e.h2, h2: e.h1, bin: e.bin}
	ctx := ctxFor(t, time.Duration(moves)*time.Minute)
	// Each migrate-dst serves its metrics (its goroutines among them) to
	// the other host.
	dsts := map[string]*lab.Destination{
		e.h2.Name: startDst(t, e, "--metrics-listen", net.JoinHostPort(e.h2.Addr, metricsPort)),
		e.h1.Name: startDst(t, back, "--metrics-listen", net.JoinHostPort(e.h1.Addr, metricsPort)),
	}
	goroutines := func(h, from lab.Host) int {
		c := &http.Client{Transport: &http.Transport{DialContext: from.Dial}, Timeout: 10 * time.Second}
		n, ok := metricstest.Get(t, c, "http://"+net.JoinHostPort(h.Addr, metricsPort)+metrics.Path).Value("go_goroutines")
		if !ok {
			t.Fatalf("%s's migrate-dst reports no go_goroutines", h.Name)
		}
		return int(n)
	}
	other := map[string][2]lab.Host{e.h1.Name: {e.h1, e.h2}, e.h2.Name: {e.h2, e.h1}}
	name := unique("soak")
	addr := runWorkloadMiB(t, ctx, e, name, lab.WorkloadImage, 32, 200)
	watch := watchBeats(t, ctx, addr, 20)
	last := waitBeat(t, ctx, addr, 0)

	type usage struct{ fds, rssKiB, goroutines int }
	var base map[string]usage
	freezes := map[string][]time.Duration{} // per strategy, in order
	here := e
	for i := 1; i <= moves; i++ {
		strategy := []string{"stop-and-copy", "lazy"}[(i-1)%2]
		start := time.Now()
		r, stderr, err := runSrc(ctx, here, name, nil, "--strategy", strategy)
		if err != nil {
			t.Fatalf("move %d (%s, %s -> %s): %v\n%s", i, strategy, here.h1.Name, here.h2.Name, err, stderr)
		}
		v, err := workload.Query(ctx, addr, workload.CmdVerify)
		if err != nil || v.Bad != 0 || !v.Continues(last) {
			t.Fatalf("after move %d: %+v (before %+v), %v", i, v, last, err)
		}
		freezes[strategy] = append(freezes[strategy], r.FreezeTime)
		last = v
		if err := watch.WaitBeats(ctx, watch.Stats().Beats+5); err != nil {
			t.Fatalf("the client's connection after move %d: %v", i, err)
		}
		t.Logf("move %d: %s %s -> %s in %v (freeze %v)", i, strategy, here.h1.Name, here.h2.Name, time.Since(start).Round(time.Millisecond), r.FreezeTime.Round(time.Millisecond))
		here = env{h1: here.h2, h2: here.h1, bin: e.bin}
		if i == 2 || i == moves {
			now := map[string]usage{}
			for h, d := range dsts {
				now[h] = usage{fds: countFDs(t, d.Pid()), rssKiB: rssKiB(t, d.Pid()), goroutines: goroutines(other[h][0], other[h][1])}
			}
			if i == 2 {
				base = now
				continue
			}
			for h, u := range now {
				b := base[h]
				t.Logf("%s's migrate-dst after %d moves: %d descriptors (%d after 2), RSS %d KiB (%d), %d goroutines (%d)",
					h, moves, u.fds, b.fds, u.rssKiB, b.rssKiB, u.goroutines, b.goroutines)
				if u.fds > b.fds+4 || u.rssKiB > b.rssKiB*3/2+8192 || u.goroutines > b.goroutines+10 {
					t.Errorf("%s's migrate-dst grows with the moves: %+v after 2, %+v after %d", h, b, u, moves)
				}
			}
		}
	}
	// The freezes early and late, for a person to compare: a host that
	// slows down with every move shows here first (timing, so not a check).
	for strategy, f := range freezes {
		n := min(10, len(f)/2)
		t.Logf("%s: median freeze %v over its first %d moves, %v over its last %d", strategy,
			median(f[:n]).Round(time.Millisecond), n, median(f[len(f)-n:]).Round(time.Millisecond), n)
	}
	if s := watch.Stop(); s.SeqBreaks != 0 || s.Resets != 0 || s.Err != nil {
		t.Fatalf("the client's stream over %d moves: %+v", moves, s)
	}
	for _, h := range []lab.Host{e.h1, e.h2} {
		for _, sub := range []string{"staging", "processes", "migrations", "outcomes"} {
			if left, _ := os.ReadDir(filepath.Join(h.WorkDir(), sub)); len(left) != 0 {
				t.Errorf("%s's work directory keeps %s/%s after the moves", h.Name, sub, entryNames(left))
			}
		}
		if dumps, _ := filepath.Glob(filepath.Join(h.WorkDir(), "dump-*")); len(dumps) != 0 {
			t.Errorf("%s keeps dump directories: %v", h.Name, dumps)
		}
	}
}

func median(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2]
}

func countFDs(t *testing.T, pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func rssKiB(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatalf("no VmRSS for %d", pid)
	return 0
}

func entryNames(ents []os.DirEntry) string {
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return strings.Join(names, ", ")
}
