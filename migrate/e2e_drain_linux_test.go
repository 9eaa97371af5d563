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

	out := lab.RunSource(ctx, e.h1, e.h2, e.bin, "", nil, "drain", "--label", label, "--strategy", "stop-and-copy")
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
