package migrate_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/migrate"
)

// TestDrainMovesEveryContainer: `migrate-src drain --label` moves every
// running container with the label to host2, one after the other, goes on
// past one that cannot move (it shares the host's network), says why that
// one stays, and fails because the host is not drained.
func TestDrainMovesEveryContainer(t *testing.T) {
	e := setup(t)
	startDst(t, e)
	ctx := ctxFor(t, 3*time.Minute)
	label := "dockmove.test.drain=" + unique("d")
	movable := []string{unique("drain-a"), unique("drain-b")}
	stuck := unique("drain-host")
	for _, name := range movable {
		runIdle(t, ctx, e, name, "--label", label, "--network", e.h1.Network)
	}
	runIdle(t, ctx, e, stuck, "--label", label, "--network", "host")

	// check of several containers by name: each one's answer, and a name
	// no running container has; then drain's --name picks by pattern.
	missing := unique("drain-none")
	out := lab.RunSource(ctx, e.h1, e.h2, e.bin, "", nil, "check", movable[0], movable[1], stuck, missing)
	want := map[string]string{movable[0]: migrate.DrainWouldMove, movable[1]: migrate.DrainWouldMove, stuck: migrate.DrainRefused, missing: migrate.DrainRefused}
	checked := drainOutcomes(t, out, len(want))
	for name, outcome := range want {
		if checked[name].Outcome != outcome {
			t.Fatalf("check of %s: %+v, want %s\n%s", name, checked[name], outcome, out.Stderr)
		}
	}
	if !strings.Contains(checked[missing].Error, "no running container of that name") || !strings.Contains(checked[stuck].Error, "host's network namespace") {
		t.Fatalf("check's reasons: %q, %q", checked[missing].Error, checked[stuck].Error)
	}
	pattern := movable[1][:len(movable[1])-8] + "*" // drain-b-*, among this test's label
	out = lab.RunSource(ctx, e.h1, e.h2, e.bin, "", nil, "drain", "check", "--label", label, "--name", pattern)
	if checked := drainOutcomes(t, out, 1); checked[movable[1]].Outcome != migrate.DrainWouldMove {
		t.Fatalf("drain check --name %s: %+v\n%s", pattern, checked, out.Stderr)
	}

	out = lab.RunSource(ctx, e.h1, e.h2, e.bin, "", nil, "drain", "--label", label, "--strategy", "stop-and-copy")
	if out.Err == nil || !strings.Contains(out.Stderr, "the host is not drained: 1 of 3 containers stay") {
		t.Fatalf("drain: %v, want it to fail naming the container that stays:\n%s", out.Err, out.Stderr)
	}
	var results []migrate.DrainResult
	if err := json.Unmarshal(out.Report, &results); err != nil || len(results) != 3 {
		t.Fatalf("drain results: %v, %s", err, out.Report)
	}
	for _, r := range results {
		switch {
		case r.Container == stuck && !strings.Contains(r.Error, "host's network namespace"):
			t.Errorf("%s: %q, want the reason it cannot move", r.Container, r.Error)
		case r.Container != stuck && r.Error != "":
			t.Errorf("%s did not move: %s", r.Container, r.Error)
		}
	}
	for _, name := range movable {
		if st, err := e.h2.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name); err != nil || st != "running" {
			t.Fatalf("%s on host2: %q, %v", name, st, err)
		}
		if _, err := e.h1.Docker(ctx, "inspect", name); err == nil {
			t.Fatalf("%s is still on host1", name)
		}
	}
	if st, err := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Status}}", stuck); err != nil || st != "running" {
		t.Fatalf("%s on host1: %q, %v", stuck, st, err)
	}
}

// TestDrainToSeveralDestinations: `migrate-src drain --to host2,host3
// --parallel 2` checks each container against both destinations and moves
// it to one that takes it: a container host2 refuses (its name is taken
// there) goes to host3 (Docker 28), the others to either; one neither
// takes (it shares the host's network) stays running here with both
// reasons; the table at the end names each outcome.
func TestDrainToSeveralDestinations(t *testing.T) {
	e := setup(t)
	e3 := setupHosts(t, e.h1.Name, "host3")
	startDst(t, e)
	startDst(t, e3)
	ctx := ctxFor(t, 4*time.Minute)
	label := "dockmove.test.drain=" + unique("d")
	onlyHost3, other := unique("drain-3"), unique("drain-any")
	stuck := unique("drain-host")
	for _, name := range []string{onlyHost3, other} {
		runIdle(t, ctx, e, name, "--label", label, "--network", e.h1.Network)
	}
	runIdle(t, ctx, e, stuck, "--label", label, "--network", "host")
	t.Cleanup(func() {
		for _, name := range []string{onlyHost3, other} {
			cleanupDocker(e3.h2, "rm", "-f", name)
		}
	})
	if _, err := e.h2.Docker(ctx, "create", "--pull", "never", "--name", onlyHost3, "--network", e.h2.Network, lab.BusyboxImage, "true"); err != nil {
		t.Fatal(err)
	}
	to := e.h2.Addr + ":" + lab.AgentPort + "," + e3.h2.Addr + ":" + lab.AgentPort
	out := lab.RunSource(ctx, e.h1, e.h2, e.bin, "", nil, "drain", "--to", to, "--parallel", "2", "--label", label, "--strategy", "stop-and-copy")
	if out.Err == nil || !strings.Contains(out.Stderr, "the host is not drained: 1 of 3 containers stay") {
		t.Fatalf("drain: %v, want it to fail naming the container that stays:\n%s", out.Err, out.Stderr)
	}
	var results []migrate.DrainResult
	if err := json.Unmarshal(out.Report, &results); err != nil || len(results) != 3 {
		t.Fatalf("drain results: %v, %s", err, out.Report)
	}
	where := map[string]lab.Host{}
	for _, r := range results {
		switch {
		case r.Container == stuck:
			if r.Outcome != migrate.DrainRefused || r.State != "running" || strings.Count(r.Error, "host's network namespace") != 2 {
				t.Errorf("%s: %s (%s) %q, want refused by both, running here", r.Container, r.Outcome, r.State, r.Error)
			}
		case r.Outcome != migrate.DrainMoved:
			t.Errorf("%s did not move: %s %s", r.Container, r.Outcome, r.Error)
		case r.Destination == e3.h2.Addr+":"+lab.AgentPort:
			where[r.Container] = e3.h2
		case r.Container == onlyHost3:
			t.Errorf("%s moved to %s, which has a container of its name", r.Container, r.Destination)
		default:
			where[r.Container] = e.h2
		}
	}
	for name, h := range where {
		if st, err := h.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name); err != nil || st != "running" {
			t.Fatalf("%s on %s: %q, %v", name, h.Name, st, err)
		}
		if _, err := e.h1.Docker(ctx, "inspect", name); err == nil {
			t.Fatalf("%s is still on host1", name)
		}
	}
	if where[onlyHost3].Name != "host3" {
		t.Fatalf("%s went to %q", onlyHost3, where[onlyHost3].Name)
	}
	if st, err := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Status}}", stuck); err != nil || st != "running" {
		t.Fatalf("%s on host1: %q, %v", stuck, st, err)
	}
}

// drainOutcomes reads a drain's (or a check of several containers')
// results, n of them, by container.
func drainOutcomes(t *testing.T, out lab.SourceRun, n int) map[string]migrate.DrainResult {
	t.Helper()
	var results []migrate.DrainResult
	if err := json.Unmarshal(out.Report, &results); err != nil || len(results) != n {
		t.Fatalf("%d results, want %d: %v, %s\n%s", len(results), n, err, out.Report, out.Stderr)
	}
	byName := map[string]migrate.DrainResult{}
	for _, r := range results {
		byName[r.Container] = r
	}
	return byName
}

// TestDrainReportsAFailedMoveAndGoesOn: a container whose move begins and
// fails (every dump meets an in-flight Unix connection its server never
// accepts, so CRIU cannot dump it) is reported failed with CRIU's cause
// and stays running here; the drain goes on to the next container, moves
// it, and fails because the host is not drained.
func TestDrainReportsAFailedMoveAndGoesOn(t *testing.T) {
	e := setup(t)
	startDst(t, e)
	ctx := ctxFor(t, 4*time.Minute)
	label := "dockmove.test.drain=" + unique("f")
	failing, movable := unique("drain-fail"), unique("drain-ok")
	runWorkloadWith(t, ctx, e, failing, lab.WorkloadImage, 16, 100, []string{"--label", label}, []string{"--unix-in-flight", "/tmp/app.sock"})
	runIdle(t, ctx, e, movable, "--label", label, "--network", e.h1.Network)

	out := lab.RunSource(ctx, e.h1, e.h2, e.bin, "", nil, "drain", "--label", label, "--strategy", "stop-and-copy")
	if out.Err == nil || !strings.Contains(out.Stderr, "the host is not drained: 1 of 2 containers stay") {
		t.Fatalf("drain: %v, want it to fail naming the container that stays:\n%s", out.Err, out.Stderr)
	}
	got := drainOutcomes(t, out, 2)
	if r := got[failing]; r.Outcome != migrate.DrainFailed || r.State != "running" || !strings.Contains(r.Error, "in-flight") {
		t.Fatalf("%s: %+v, want failed with CRIU's cause, running here", failing, r)
	}
	if r := got[movable]; r.Outcome != migrate.DrainMoved {
		t.Fatalf("%s: %+v, want moved", movable, r)
	}
	if st, err := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Status}}", failing); err != nil || st != "running" {
		t.Fatalf("%s on host1: %q, %v", failing, st, err)
	}
	if out, _ := e.h2.Docker(ctx, "ps", "-aq", "--filter", "name=^/"+failing+"$"); out != "" {
		t.Fatalf("host2 holds %s", failing)
	}
	if st, err := e.h2.Docker(ctx, "inspect", "-f", "{{.State.Status}}", movable); err != nil || st != "running" {
		t.Fatalf("%s on host2: %q, %v", movable, st, err)
	}
}
