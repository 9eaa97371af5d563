package migrate_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/workload"
)

// TestConcurrentMigrationsBothWays: eight migrations at once, four from
// host1 to host2 and four from host2 to host1, stop-and-copy and lazy
// mixed, each host's migrate-dst serving while its migrate-src run. Every
// container arrives with its memory verified and its counter continued,
// and runs on exactly one host.
func TestConcurrentMigrationsBothWays(t *testing.T) {
	e := setup(t)
	back := env{h1: e.h2, h2: e.h1, bin: e.bin}
	ctx := ctxFor(t, 5*time.Minute)
	startDst(t, e)
	startDst(t, back)
	type move struct {
		from     env
		name     string
		addr     string
		strategy string
		before   workload.Beat
	}
	var moves []*move
	for i := range 8 {
		from := []env{e, back}[i%2]
		m := &move{from: from, name: unique(fmt.Sprintf("conc%d", i)), strategy: []string{"stop-and-copy", "lazy"}[(i/2)%2]}
		m.addr = runWorkloadMiB(t, ctx, from, m.name, lab.WorkloadImage, 8, 100)
		moves = append(moves, m)
	}
	for _, m := range moves {
		m.before = waitBeat(t, ctx, m.addr, 0)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(moves))
	start := time.Now()
	for i, m := range moves {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, stderr, err := runSrc(ctx, m.from, m.name, nil, "--strategy", m.strategy); err != nil {
				errs[i] = fmt.Errorf("%s (%s, %s -> %s): %v\n%s", m.name, m.strategy, m.from.h1.Name, m.from.h2.Name, err, stderr)
			}
		}()
	}
	wg.Wait()
	t.Logf("8 migrations at once took %v", time.Since(start).Round(time.Millisecond))
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if t.Failed() {
		return
	}
	for _, m := range moves {
		v, err := workload.Query(ctx, m.addr, workload.CmdVerify)
		if err != nil || v.Bad != 0 || !v.Continues(m.before) {
			t.Errorf("%s after the move: %+v (before %+v), %v", m.name, v, m.before, err)
		}
		if out, _ := m.from.h1.Docker(ctx, "ps", "-aq", "--filter", "name=^/"+m.name+"$"); out != "" {
			t.Errorf("%s is still on %s after moving to %s", m.name, m.from.h1.Name, m.from.h2.Name)
		}
		if state, _ := m.from.h2.Docker(ctx, "inspect", "-f", "{{.State.Running}}", m.name); state != "true" {
			t.Errorf("%s on %s: running=%q", m.name, m.from.h2.Name, state)
		}
	}
}
