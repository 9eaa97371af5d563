package migrate_test

import (
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/migrate"
	"github.com/dockmove/dockmove/netrewire"
)

// TestAddressHeldElsewhereIsRefused: the container's address is answered
// on its network by another machine (here the lab switch's own host,
// which takes the address as a second one): host2 would take it over and
// announce it, so the migration is refused before anything is frozen,
// naming the address and who holds it; the container runs on in host1 and
// host2 keeps nothing. With the address free again, it moves. IPv4 (an
// ARP probe) and IPv6 (a duplicate address detection's solicitation, on
// the lab's dual-stack second network).
func TestAddressHeldElsewhereIsRefused(t *testing.T) {
	e := setup(t)
	startDst(t, e)
	t.Run("ipv4", func(t *testing.T) { heldElsewhere(t, e, e.h1.Network, e.h1.Switch, "IPAddress", "/32") })
	t.Run("ipv6", func(t *testing.T) { heldElsewhere(t, e, e.h1.Network2, e.h1.Switch2, "GlobalIPv6Address", "/128") })
}

// heldElsewhere squats the container's address (field of its endpoint on
// network) on the lab switch sw.
func heldElsewhere(t *testing.T, e env, network, sw, field, hostPrefix string) {
	ctx := ctxFor(t, 3*time.Minute)
	name := unique("squat")
	runIdle(t, ctx, e, name, "--network", network)
	ip, err := e.h1.Docker(ctx, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+network+`").`+field+`}}`, name)
	if err != nil || net.ParseIP(ip) == nil {
		t.Fatalf("the container's address: %q, %v", ip, err)
	}
	swi, err := net.InterfaceByName(sw)
	if err != nil {
		t.Fatal(err)
	}
	squat := func(op string) error {
		args := []string{"addr", op, ip + hostPrefix, "dev", sw}
		if strings.Contains(ip, ":") {
			args = append([]string{"-6"}, append(args, "nodad")...)
		}
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %v: %v: %s", args, err, out)
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
	want := fmt.Sprintf("address %s on network %q already answers from MAC %s", ip, network, swi.HardwareAddr)
	if err == nil || !strings.Contains(stderr, want) {
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
	if got, _ := e.h2.Docker(ctx, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+network+`").`+field+`}}`, name); got != ip {
		t.Fatalf("address on host2 %q, want %q", got, ip)
	}
}

// TestAddressStaysWithItsContainer: a container moved off host1 with its
// address on the shared network leaves that address in host1's own
// allocation range. Without more, host1's Docker hands it to its next
// container while the moved one answers for it from host2: two interfaces
// with one address on one link (the test reproduces that first, with a
// container asking host1 for the address). host1 keeps a reservation
// instead, which answers nothing; the address comes home with the
// container (the reservation makes way, and is made again if the
// homecoming fails), and leaves again with it.
func TestAddressStaysWithItsContainer(t *testing.T) {
	e := setup(t)
	back := env{h1: e.h2, h2: e.h1, bin: e.bin}
	ctx := ctxFor(t, 4*time.Minute)
	startDst(t, e)
	name, squatter := unique("owned"), unique("squatter")
	t.Cleanup(func() { cleanupDocker(e.h1, "rm", "-f", squatter) })
	runIdle(t, ctx, e, name, "--network", e.h1.Network)
	ip, mac, _ := strings.Cut(identity(t, ctx, e.h1, name), " ")
	reservation := "dockmove-reserve-" + e.h1.Network + "-" + ip
	t.Cleanup(func() { cleanupDocker(e.h1, "rm", "-f", reservation) })
	holders := func() []string {
		t.Helper()
		hw, err := netrewire.Holders(e.h1.Switch, net.ParseIP(ip), 500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, h := range hw {
			out = append(out, h.String())
		}
		return out
	}
	reserved := func(when string) {
		t.Helper()
		// After a failed homecoming host1 makes the reservation again as
		// it cleans up: give it a moment.
		st := ""
		for deadline := time.Now().Add(30 * time.Second); st != "running" && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			st, _ = e.h1.Docker(ctx, "inspect", "-f", "{{.State.Status}}", reservation)
		}
		if _, err := e.h1.Docker(ctx, "run", "-d", "--pull", "never", "--name", squatter, "--network", e.h1.Network, "--ip", ip, lab.BusyboxImage, "sleep", "600"); err == nil {
			t.Fatalf("%s host1's Docker gave the address %s of the moved container (which answers for it from host2) to another container "+
				"on host1: one address on two interfaces of the network", when, ip)
		}
		if st != "running" {
			t.Fatalf("%s host1 keeps no running reservation of %s (%q)", when, ip, st)
		}
		if got := holders(); len(got) != 1 || got[0] != mac {
			t.Fatalf("%s the address %s answers from %v, want only the moved container's %s", when, ip, got, mac)
		}
		// Its MAC is its own: with the moved container's (Docker 20.10
		// derives one from the address) the switch would learn it here
		// whenever the reservation's interface speaks.
		if own, err := e.h1.Docker(ctx, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+e.h1.Network+`").MacAddress}}`, reservation); err != nil || own == mac || own == "" {
			t.Fatalf("%s the reservation's MAC is %q (%v), want one of its own, not the moved container's %s", when, own, err, mac)
		}
	}
	move := func(e env, why string, extra ...string) *migrate.Report {
		t.Helper()
		r, stderr, err := runSrc(ctx, e, name, nil, extra...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", why, err, stderr)
		}
		return r
	}

	r := move(e, "to host2")
	reserved("after the move to host2,")
	if len(r.Reservations) != 1 || r.Reservations[0].IPv4 != ip || len(r.Warnings) != 0 {
		t.Fatalf("migrate-src reports reservations %+v, warnings %q; want %s's", r.Reservations, r.Warnings, ip)
	}
	var status struct {
		Reservations []docker.Reservation `json:"reservations"`
	}
	agentJSON(t, ctx, e.h1, &status, "migrate-src", "status", "--json", "--work-dir", e.h1.WorkDir())
	if len(status.Reservations) != 1 || status.Reservations[0].IPv4 != ip || status.Reservations[0].Network != e.h1.Network {
		t.Fatalf("migrate-src status lists reservations %+v, want %s on %s", status.Reservations, ip, e.h1.Network)
	}

	// Home, through a migrate-dst whose restore fails: the reservation
	// made way for the container, and is made again.
	failing, err := lab.StartDestination(e.h1, e.bin, "--restore-criu-option", "no-such-criu-option")
	if err != nil {
		t.Fatal(err)
	}
	_, stderr, err := runSrc(ctx, back, name, nil)
	if err == nil {
		t.Fatalf("the homecoming with a failing restore succeeded:\n%s", stderr)
	}
	reserved("after a failed homecoming,")
	failing.Stop()

	startDst(t, back)
	move(back, "home to host1", "--strategy", "lazy")
	if _, err := e.h1.Docker(ctx, "inspect", reservation); err == nil {
		t.Fatal("the reservation stayed after the container came home")
	}
	if got, _, _ := strings.Cut(identity(t, ctx, e.h1, name), " "); got != ip {
		t.Fatalf("home with address %s, want %s", got, ip)
	}
	if out, _ := e.h2.Docker(ctx, "ps", "-aq", "--filter", "label=dockmove.reservation"); out != "" {
		t.Fatalf("host2, whose range does not hold %s, keeps a reservation: %s", ip, out)
	}

	move(e, "to host2 again")
	reserved("after the second move to host2,")
}

// TestNetworkPolicy: host2 decides which of its networks a migrated
// container may join (migrate-dst --networks), and a source cannot claim
// there a name a container of host2's goes by: an alias that would draw
// that container's traffic is refused before anything is frozen.
func TestNetworkPolicy(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	name, peer := unique("claims"), unique("peer")
	t.Cleanup(func() { cleanupDocker(e.h2, "rm", "-f", peer) })
	runIdle(t, ctx, e, name, "--network", e.h1.Network, "--network-alias", peer)
	refused := func(want string) {
		t.Helper()
		_, stderr, err := runSrc(ctx, e, name, nil)
		if err == nil || !strings.Contains(stderr, want) {
			t.Fatalf("migration: %v, want %q in\n%s", err, want, stderr)
		}
		if st, _ := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name); st != "running" {
			t.Fatalf("after the refusal the container is %q on host1", st)
		}
	}
	d := startDst(t, e, "--networks", e.h2.Network2)
	refused(fmt.Sprintf("network %q is not one a migration may attach a container to here (migrate-dst --networks %s)", e.h2.Network, e.h2.Network2))
	d.Stop()
	startDst(t, e)
	if _, err := e.h2.Docker(ctx, "run", "-d", "--pull", "never", "--name", peer, "--network", e.h2.Network, lab.BusyboxImage, "sleep", "600"); err != nil {
		t.Fatal(err)
	}
	refused(fmt.Sprintf("alias %q on network %q is a name of container %s here", peer, e.h2.Network, peer))
	if _, err := e.h2.Docker(ctx, "rm", "-f", peer); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runSrc(ctx, e, name, nil); err != nil {
		t.Fatalf("migration once host2's %s is gone: %v\n%s", peer, err, stderr)
	}
}
