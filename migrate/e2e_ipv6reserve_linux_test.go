package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/reserve"
	"github.com/dockmove/dockmove/netrewire"
)

// On a dual-stack network the home keeps the moved container's IPv6
// address too: without it host1's Docker handed the address to its next
// container while the moved one answered for it from host2. The address
// is held, nothing on host1 answers for it, a neighbour on the link ends
// up sending to the moved container, and the container takes both
// addresses back when it comes home. On Docker 28 the reservation runs
// under dockmove's runtime, Docker advertises the address as it wires it,
// and host2's announcements after the commit take the neighbour back.
func TestIPv6AddressStaysWithItsContainer(t *testing.T) {
	t.Run("20.10", func(t *testing.T) { ipv6StaysWithItsContainer(t, setupHosts(t, "host1", "host2")) })
	t.Run("28", func(t *testing.T) { ipv6StaysWithItsContainer(t, setupHosts(t, "host3", "host4")) })
}

func ipv6StaysWithItsContainer(t *testing.T, e env) {
	back := env{h1: e.h2, h2: e.h1, bin: e.bin}
	ctx := ctxFor(t, 4*time.Minute)
	startDst(t, e)
	startDst(t, back)
	name, squatter := unique("owned6"), unique("squatter6")
	t.Cleanup(func() { cleanupDocker(e.h1, "rm", "-f", squatter) })
	runIdle(t, ctx, e, name, "--network", e.h1.Network2)
	id := strings.Fields(identity2(t, ctx, e.h1, name))
	if len(id) != 3 {
		t.Fatalf("the container has no IPv6 address on %s: %q", e.h1.Network2, id)
	}
	ip, mac, ip6 := id[0], id[1], id[2]
	reservation := reserve.Name(e.h1.Network2, ip)
	t.Cleanup(func() { cleanupDocker(e.h1, "rm", "-f", reservation) })

	// A neighbour on the link (the switch's own address) that has talked
	// to the container: its entry for the address must end up on the
	// moved container's MAC.
	if err := reach(ctx, ip6); err != nil {
		t.Fatalf("before the move: %v", err)
	}
	r, stderr, err := runSrc(ctx, e, name, nil)
	if err != nil {
		t.Fatalf("to %s: %v\n%s", e.h2.Name, err, stderr)
	}
	moved := time.Now()
	if len(r.Reservations) != 1 || r.Reservations[0].IPv4 != ip || r.Reservations[0].IPv6 != ip6 || len(r.Warnings) != 0 {
		t.Fatalf("migrate-src reports reservations %+v (warnings %q), want %s and %s", r.Reservations, r.Warnings, ip, ip6)
	}
	st := ""
	for deadline := time.Now().Add(30 * time.Second); st != "running" && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		st, _ = e.h1.Docker(ctx, "inspect", "-f", "{{.State.Status}}", reservation)
	}
	if st != "running" {
		t.Fatalf("host1 keeps no running reservation of %s (%q)", ip6, st)
	}
	if _, err := e.h1.Docker(ctx, "run", "-d", "--pull", "never", "--name", squatter, "--network", e.h1.Network2, "--ip6", ip6,
		lab.BusyboxImage, "sleep", "600"); err == nil {
		t.Fatalf("host1's Docker gave the IPv6 address %s of the moved container (which answers for it from %s) to another container: "+
			"one address on two interfaces of the network", ip6, e.h2.Name)
	}
	// host2 announces the address over the 7.5 s after the commit; by
	// then the neighbour's entry is the moved container's (read before
	// anything here makes the neighbour ask again: the probe below draws
	// an answer that would put it right by itself) and it is reached.
	time.Sleep(time.Until(moved.Add(9 * time.Second)))
	neigh, err := exec.CommandContext(ctx, "ip", "-6", "neigh", "show", "to", ip6, "dev", e.h1.Switch2).Output()
	if err != nil || !strings.Contains(string(neigh), "lladdr "+mac) {
		t.Fatalf("the switch's neighbour entry for %s is %q (%v), want the moved container's %s", ip6, neigh, err, mac)
	}
	if err := reach(ctx, ip6); err != nil {
		t.Fatalf("after the move: %v", err)
	}

	// Only the moved container answers for it on the link (a duplicate
	// address probe from the switch).
	hw, err := netrewire.Holders(e.h1.Switch2, net.ParseIP(ip6), 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if len(hw) != 1 || hw[0].String() != mac {
		t.Fatalf("the IPv6 address %s answers from %v, want only the moved container's %s", ip6, hw, mac)
	}
	if _, stderr, err := runSrc(ctx, back, name, nil, "--strategy", "lazy"); err != nil {
		t.Fatalf("home to %s: %v\n%s", e.h1.Name, err, stderr)
	}
	if _, err := e.h1.Docker(ctx, "inspect", reservation); err == nil {
		t.Fatal("the reservation stayed after the container came home")
	}
	if got := strings.Fields(identity2(t, ctx, e.h1, name)); len(got) != 3 || got[0] != ip || got[2] != ip6 {
		t.Fatalf("home with %q, want %s and %s", got, ip, ip6)
	}
}

// reach reports whether the host at ip answers from the root namespace: a
// TCP connection to a port nobody listens on is refused by its kernel
// (dropped packets time out instead).
func reach(ctx context.Context, ip string) error {
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(ip, "9"))
	if err == nil {
		conn.Close()
		return nil
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return nil
	}
	return fmt.Errorf("%s does not answer: %w", ip, err)
}
