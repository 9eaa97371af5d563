package migrate_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/reserve"
	"github.com/dockmove/dockmove/netrewire"
)

// On a dual-stack network the home keeps the moved container's IPv6
// address too: without it host1's Docker handed the address to its next
// container while the moved one answered for it from host2. The address
// is held, nothing on host1 answers for it, and the container takes both
// addresses back when it comes home. Docker 28 cannot hold it silently
// (docker.Reserve): the move says so.
func TestIPv6AddressStaysWithItsContainer(t *testing.T) {
	t.Run("20.10", func(t *testing.T) { ipv6StaysWithItsContainer(t, setupHosts(t, "host1", "host2")) })
	t.Run("28", func(t *testing.T) {
		e := setupHosts(t, "host3", "host4")
		ctx := ctxFor(t, 2*time.Minute)
		startDst(t, e)
		name := unique("owned6")
		runIdle(t, ctx, e, name, "--network", e.h1.Network2)
		id := strings.Fields(identity2(t, ctx, e.h1, name))
		if len(id) != 3 {
			t.Fatalf("the container has no IPv6 address on %s: %q", e.h1.Network2, id)
		}
		t.Cleanup(func() { cleanupDocker(e.h1, "rm", "-f", reserve.Name(e.h1.Network2, id[0])) })
		r, stderr, err := runSrc(ctx, e, name, nil)
		if err != nil {
			t.Fatalf("to %s: %v\n%s", e.h2.Name, err, stderr)
		}
		if len(r.Reservations) != 1 || r.Reservations[0].IPv6 != "" || !strings.Contains(strings.Join(r.Warnings, "\n"), "IPv6 address "+id[2]+" on "+e.h1.Network2+" is not reserved") {
			t.Fatalf("reservations %+v, warnings %q: want the IPv4 address held and a warning about %s", r.Reservations, r.Warnings, id[2])
		}
	})
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

	r, stderr, err := runSrc(ctx, e, name, nil)
	if err != nil {
		t.Fatalf("to %s: %v\n%s", e.h2.Name, err, stderr)
	}
	if len(r.Reservations) != 1 || r.Reservations[0].IPv4 != ip || r.Reservations[0].IPv6 != ip6 {
		t.Fatalf("migrate-src reports reservations %+v, want %s and %s", r.Reservations, ip, ip6)
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
