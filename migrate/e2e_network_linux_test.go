package migrate_test

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestAddressHeldElsewhereIsRefused: the container's address is answered
// on its network by another machine (here the lab switch's own host,
// which takes the address as a second one): host2 would take it over and
// announce it, so the migration is refused before anything is frozen,
// naming the address and who holds it; the container runs on in host1 and
// host2 keeps nothing. With the address free again, it moves.
func TestAddressHeldElsewhereIsRefused(t *testing.T) {
	e := setup(t)
	startDst(t, e)
	ctx := ctxFor(t, 3*time.Minute)
	name := unique("squat")
	runIdle(t, ctx, e, name, "--network", e.h1.Network)
	ip, _, _ := strings.Cut(identity(t, ctx, e.h1, name), " ")
	sw, err := net.InterfaceByName(e.h1.Switch)
	if err != nil {
		t.Fatal(err)
	}
	squat := func(op string) error {
		out, err := exec.Command("ip", "addr", op, ip+"/32", "dev", e.h1.Switch).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip addr %s %s: %v: %s", op, ip, err, out)
		}
		return nil
	}
	if err := squat("add"); err != nil {
		t.Fatal(err)
	}
	squatting := true
	t.Cleanup(func() {
		if squatting {
			squat("del")
		}
	})

	_, stderr, err := runSrc(ctx, e, name, nil)
	want := "already answers from MAC " + sw.HardwareAddr.String()
	if err == nil || !strings.Contains(stderr, want) || !strings.Contains(stderr, ip) {
		t.Fatalf("migration with the address held elsewhere: %v, want %q in:\n%s", err, want, stderr)
	}
	if st, err := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name); err != nil || st != "running" {
		t.Fatalf("on host1 after the refusal: %q, %v", st, err)
	}
	if _, err := e.h2.Docker(ctx, "inspect", name); err == nil {
		t.Fatal("host2 kept a container after refusing the migration")
	}

	if err := squat("del"); err != nil {
		t.Fatal(err)
	}
	squatting = false
	if _, stderr, err := runSrc(ctx, e, name, nil); err != nil {
		t.Fatalf("migration with the address free: %v\n%s", err, stderr)
	}
	if got, _, _ := strings.Cut(identity(t, ctx, e.h2, name), " "); got != ip {
		t.Fatalf("address on host2 %q, want %q", got, ip)
	}
}
