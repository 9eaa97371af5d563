package migrate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/reserve"
	"github.com/dockmove/dockmove/migrate"
)

// A reservation stays while the container that moved away answers for its
// address, and `migrate-src reservations --prune` frees the address once
// nobody does (the container removed on host2): host1's Docker can then
// give it out again. Without --prune it only says so.
func TestReservationsPrunedOnceNobodyAnswers(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	name, next := unique("pruned"), unique("next")
	t.Cleanup(func() { cleanupDocker(e.h1, "rm", "-f", next) })
	runIdle(t, ctx, e, name, "--network", e.h1.Network)
	ip, mac, _ := strings.Cut(identity(t, ctx, e.h1, name), " ")
	reservation := reserve.Name(e.h1.Network, ip)
	t.Cleanup(func() { cleanupDocker(e.h1, "rm", "-f", reservation) })
	if _, stderr, err := runSrc(ctx, e, name, nil); err != nil {
		t.Fatalf("to host2: %v\n%s", err, stderr)
	}
	fate := func(prune bool) migrate.ReservationFate {
		t.Helper()
		args := []string{"reservations", "--json"}
		if prune {
			args = append(args, "--prune")
		}
		var fates []migrate.ReservationFate
		if code := agentJSON(t, ctx, e.h1, &fates, "migrate-src", args...); code != 0 {
			t.Fatalf("migrate-src %v: exit %d: %+v", args, code, fates)
		}
		for _, f := range fates {
			if f.IPv4 == ip && f.Network == e.h1.Network {
				return f
			}
		}
		t.Fatalf("migrate-src %v lists no reservation of %s: %+v", args, ip, fates)
		return migrate.ReservationFate{}
	}
	exists := func() bool {
		_, err := e.h1.Docker(ctx, "inspect", reservation)
		return err == nil
	}

	if f := fate(true); f.Removed || f.Unused || len(f.AnsweredBy) != 1 || f.AnsweredBy[0] != mac {
		t.Fatalf("while the moved container runs: %+v, want kept, answered by its MAC %s", f, mac)
	}
	if !exists() {
		t.Fatal("the reservation of an address in use was removed")
	}
	if _, err := e.h2.Docker(ctx, "rm", "-f", name); err != nil {
		t.Fatal(err)
	}
	if f := fate(false); !f.Unused || f.Removed || len(f.AnsweredBy) != 0 || !exists() {
		t.Fatalf("without --prune, once nobody answers: %+v (reservation there: %v), want reported as removable and kept", f, exists())
	}
	if f := fate(true); !f.Unused || !f.Removed || f.Error != "" || exists() {
		t.Fatalf("with --prune, once nobody answers: %+v (reservation there: %v), want removed", f, exists())
	}
	if _, err := e.h1.Docker(ctx, "run", "-d", "--pull", "never", "--name", next, "--network", e.h1.Network, "--ip", ip,
		lab.BusyboxImage, "sleep", "600"); err != nil {
		t.Fatalf("the freed address %s cannot be given out again on host1: %v", ip, err)
	}
}
