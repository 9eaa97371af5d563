package migrate_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/workload"
)

// TestSeveralNetworks moves a container on two networks (the lab's two
// macvlan segments, the second dual-stack) to host2 and back: each
// interface keeps its name, addresses and MAC as the processes see them,
// a client connected through each network and over IPv6 keeps its
// connection, host2 advertises the IPv6 address, and the memory verifies.
// A container whose interfaces host2's Docker would number otherwise is
// refused before anything is frozen: before Docker 28 Docker names them
// itself, the dual-stack network first (measured on 20.10: whatever the
// order of create and connect); Docker 28 keeps them.
func TestSeveralNetworks(t *testing.T) {
	e := setup(t)
	t.Run("eth0-on-the-first", func(t *testing.T) { severalNetworks(t, e, false) })
	t.Run("eth0-on-the-second", func(t *testing.T) { severalNetworks(t, e, true) })
}

// severalNetworks runs the container with eth0 on the lab's first network
// and eth1 on its second, or (swapped) the other way round.
func severalNetworks(t *testing.T, e env, swapped bool) {
	ctx := ctxFor(t, 4*time.Minute)
	back := env{h1: e.h2, h2: e.h1, bin: e.bin}
	startDst(t, e)
	startDst(t, back)
	name := unique("twonets")
	first, second := e.h1.Network, e.h1.Network2
	if swapped {
		first, second = second, first
	}
	if _, err := e.h1.Docker(ctx, "run", "-d", "--pull", "never", "--name", name, "--network", first, lab.WorkloadImage,
		"/usr/local/bin/workload", "--data-dir", "/data", "--mem-mib", "32", "--dirty-pages-per-sec", "200", "--verify-every", "1s"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, h := range []lab.Host{e.h1, e.h2} {
			cleanupDocker(h, "rm", "-f", name)
		}
	})
	// Connected while it runs: Docker names it eth1, whatever its order.
	if _, err := e.h1.Docker(ctx, "network", "connect", second, name); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, iface := range []string{"eth0", "eth1"} {
		ip, err := e.h1.Docker(ctx, "exec", name, "sh", "-c", "ip -o -4 addr show dev "+iface+" | sed 's/.* inet \\([0-9.]*\\).*/\\1/'")
		if err != nil || net.ParseIP(ip) == nil {
			t.Fatalf("%s's address: %q, %v", iface, ip, err)
		}
		// The address may have lived on host2's switch port in an
		// earlier test.
		if _, err := e.h1.Docker(ctx, "exec", name, "arping", "-U", "-c", "1", "-I", iface, ip); err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, net.JoinHostPort(ip, fmt.Sprint(lab.WorkloadPort)))
	}
	// The lab's second network is dual-stack: a client on the container's
	// IPv6 address too.
	ip6, err := e.h1.Docker(ctx, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+e.h1.Network2+`").GlobalIPv6Address}}`, name)
	if err != nil || net.ParseIP(ip6) == nil {
		t.Fatalf("the container's IPv6 address on %s: %q, %v", e.h1.Network2, ip6, err)
	}
	addrs = append(addrs, net.JoinHostPort(ip6, fmt.Sprint(lab.WorkloadPort)))
	before := waitBeat(t, ctx, addrs[0], 20)
	watches := []*workload.Watcher{watchBeats(t, ctx, addrs[0], 5), watchBeats(t, ctx, addrs[1], 5), watchBeats(t, ctx, addrs[2], 5)}
	want := interfaces(t, ctx, e.h1, name)
	wantInspect := networkIdentity(t, ctx, e.h1, name)
	t.Logf("on %s:\n%s\n%s", e.h1.Name, want, wantInspect)

	refusal := ""
	switch {
	case !e.h2.Modern && first != e.h1.Network2:
		// Docker before 28 wires the dual-stack network first.
		refusal = fmt.Sprintf("would attach the container as eth0=%s, eth1=%s, not as on the source (eth0=%s, eth1=%s)", second, first, first, second)
	case e.h1.Modern && !e.h2.Modern:
		// Docker 28 gave eth1 a MAC of its own; 20.10 derives it.
		refusal = fmt.Sprintf("network %q: Docker here (API 1.41) sets the MAC of the container's first network only", second)
	}
	if refusal != "" {
		_, stderr, err := runSrc(ctx, e, name, nil)
		if err == nil || !strings.Contains(stderr, refusal) {
			t.Fatalf("move of a container whose interfaces host2 would swap: %v, want %q in\n%s", err, refusal, stderr)
		}
		if st, _ := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name); st != "running" {
			t.Fatalf("after the refusal the container is %q on host1", st)
		}
		assertHost2Clean(t, ctx, e, name, true)
		for _, w := range watches {
			if err := w.WaitBeats(ctx, w.Stats().Beats+5); err != nil {
				t.Fatalf("a client after the refusal: %v", err)
			}
		}
		return
	}
	for _, move := range []struct {
		e        env
		strategy string
	}{{e, "stop-and-copy"}, {back, "lazy"}} {
		step := fmt.Sprintf("%s %s -> %s", move.strategy, move.e.h1.Name, move.e.h2.Name)
		advertised := watchAdverts(t, e.h1.Switch2, net.ParseIP(ip6))
		if _, stderr, err := runSrc(ctx, move.e, name, nil, "--strategy", move.strategy); err != nil {
			t.Fatalf("%s: %v\n%s", step, err, stderr)
		}
		if !advertised(5 * time.Second) {
			t.Fatalf("after %s no neighbour advertisement for %s reached the switch", step, ip6)
		}
		if got := interfaces(t, ctx, move.e.h2, name); got != want {
			t.Fatalf("after %s the container's interfaces are\n%s\nnot as before\n%s", step, got, want)
		}
		if got := networkIdentity(t, ctx, move.e.h2, name); got != wantInspect {
			t.Fatalf("after %s docker inspect says %s, not %s", step, got, wantInspect)
		}
		v, err := workload.Query(ctx, addrs[1], workload.CmdVerify)
		if err != nil || v.Bad != 0 || !v.Continues(before) {
			t.Fatalf("after %s, through the second network: %+v (before %+v), %v", step, v, before, err)
		}
		for i, w := range watches {
			if err := w.WaitBeats(ctx, w.Stats().Beats+5); err != nil {
				t.Fatalf("after %s, the client of %s: %v", step, addrs[i], err)
			}
		}
	}
	for i, w := range watches {
		if s := w.Stop(); s.SeqBreaks != 0 || s.Resets != 0 || s.Err != nil {
			t.Fatalf("the client of %s over both moves: %+v", addrs[i], s)
		}
	}
}

// interfaces lists the container's interfaces as its processes see them:
// name, MAC and IPv4 address, one a line.
func interfaces(t *testing.T, ctx context.Context, h lab.Host, name string) string {
	t.Helper()
	out, err := h.Docker(ctx, "exec", name, "sh", "-c",
		`for d in /sys/class/net/*; do n=${d##*/}; [ "$n" = lo ] && continue; echo "$n $(cat $d/address) $(ip -o -4 addr show dev $n | sed 's/.* inet \([^ ]*\).*/\1/')"; done`)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// networkIdentity is what `docker inspect` says of the container's
// networks: each one's addresses and MAC.
func networkIdentity(t *testing.T, ctx context.Context, h lab.Host, name string) string {
	t.Helper()
	out, err := h.Docker(ctx, "inspect", "-f", `{{range $n, $ep := .NetworkSettings.Networks}}{{$n}}={{$ep.IPAddress}},{{$ep.GlobalIPv6Address}},{{$ep.MacAddress}} {{end}}`, name)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMissingNetworkIsCreated moves containers onto networks host2 lacks:
// refused before freezing unless the user asks host2 to create them
// (--create-networks) and host2 allows it (--allow-create-networks); then
// host2 makes the network from host1's definition under its own policy. A
// bridge, each host's own, is made as host1 defines it (the container gets
// a new address on it); a network shared with host1 (the lab's second
// macvlan segment, removed from host2 for the test) needs host2's own
// allocation range, keeps the container's address, and goes again when
// the migration fails.
func TestMissingNetworkIsCreated(t *testing.T) {
	e := setup(t)
	t.Run("bridge", func(t *testing.T) { missingBridge(t, e) })
	t.Run("shared", func(t *testing.T) { missingShared(t, e) })
}

func missingBridge(t *testing.T, e env) {
	ctx := ctxFor(t, 3*time.Minute)
	netName, name := unique("only1"), unique("onbridge")
	if _, err := e.h1.Docker(ctx, "network", "create", "-d", "bridge", "--subnet", "10.88.5.0/24", "--label", "team=a", netName); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, h := range []lab.Host{e.h1, e.h2} {
			cleanupDocker(h, "rm", "-f", name)
			cleanupDocker(h, "network", "rm", netName)
		}
	})
	runIdle(t, ctx, e, name, "--network", netName)
	d := startDst(t, e)
	refused := func(want string, args ...string) {
		t.Helper()
		_, stderr, err := runSrc(ctx, e, name, nil, append([]string{"--allow-new-address"}, args...)...)
		if err == nil || !strings.Contains(stderr, want) {
			t.Fatalf("move onto a network host2 lacks (%v): %v, want %q in\n%s", args, err, want, stderr)
		}
	}
	refused(`the destination has no network "` + netName + `" for the container (migrate-src --create-networks`)
	refused("does not create networks for migrations (migrate-dst --allow-create-networks)", "--create-networks")
	d.Stop()
	startDst(t, e, "--allow-create-networks")
	r, stderr, err := runSrc(ctx, e, name, nil, "--allow-new-address", "--create-networks")
	if err != nil {
		t.Fatalf("move with the network created: %v\n%s", err, stderr)
	}
	got, err := e.h2.Docker(ctx, "network", "inspect", "-f", `{{.Driver}} {{range .IPAM.Config}}{{.Subnet}}{{end}} {{index .Labels "team"}}`, netName)
	if err != nil || got != "bridge 10.88.5.0/24 a" {
		t.Fatalf("host2's network %s: %q, %v", netName, got, err)
	}
	if !strings.HasPrefix(r.NewAddress, "10.88.5.") {
		t.Fatalf("new address %q is not on the created network", r.NewAddress)
	}
}

func missingShared(t *testing.T, e env) {
	ctx := ctxFor(t, 3*time.Minute)
	net2, name := e.h2.Network2, unique("onshared")
	if _, err := e.h2.Docker(ctx, "network", "rm", net2); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The lab's own network back as lab.sh makes it.
		cleanupDocker(e.h2, "rm", "-f", name)
		root, err := lab.RepoRoot()
		if err == nil {
			var out []byte
			if out, err = exec.Command("bash", filepath.Join(root, "scripts", "lab.sh"), "networks", e.h2.Name).CombinedOutput(); err != nil {
				err = fmt.Errorf("%v: %s", err, out)
			}
		}
		if err != nil {
			t.Errorf("putting %s back on %s: %v (run: make lab-up)", net2, e.h2.Name, err)
		}
	})
	runIdle(t, ctx, e, name, "--network", net2)
	before := identity2(t, ctx, e.h1, name)
	d := startDst(t, e, "--allow-create-networks")
	_, stderr, err := runSrc(ctx, e, name, nil, "--create-networks")
	if want := "migrate-dst --network-range " + net2 + "=CIDR"; err == nil || !strings.Contains(stderr, want) {
		t.Fatalf("creating a shared network without host2's range: %v, want %q in\n%s", err, want, stderr)
	}
	d.Stop()
	mine := []string{"--allow-create-networks", "--network-range=" + net2 + "=" + e.h2.IPRange2, "--network-range=" + net2 + "=" + e.h2.IPRange2V6}
	failing := startDst(t, e, append(mine, "--restore-criu-option", "no-such-criu-option")...)
	if _, stderr, err := runSrc(ctx, e, name, nil, "--create-networks"); err == nil {
		t.Fatalf("a migration whose restore fails succeeded:\n%s", stderr)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if _, err := e.h2.Docker(ctx, "network", "inspect", net2); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host2 keeps the network %s it made for a migration that failed", net2)
		}
	}
	failing.Stop()
	startDst(t, e, mine...)
	if _, stderr, err := runSrc(ctx, e, name, nil, "--create-networks"); err != nil {
		t.Fatalf("move with the network created: %v\n%s", err, stderr)
	}
	if got := identity2(t, ctx, e.h2, name); got != before {
		t.Fatalf("identity on host2 %q, want %q", got, before)
	}
	got, err := e.h2.Docker(ctx, "network", "inspect", "-f", `{{.Driver}} {{index .Options "parent"}}{{range .IPAM.Config}} {{.Subnet}} {{.IPRange}}{{end}}`, net2)
	if want := fmt.Sprintf("macvlan eth1 %s %s %s %s", e.h2.Subnet2, e.h2.IPRange2, e.h2.Subnet2V6, e.h2.IPRange2V6); err != nil || got != want {
		t.Fatalf("host2's network %s: %q, %v; want %q", net2, got, err, want)
	}
}

// identity2 is the container's address, MAC and IPv6 address on the lab's
// second network (dual-stack).
func identity2(t *testing.T, ctx context.Context, h lab.Host, name string) string {
	t.Helper()
	out, err := h.Docker(ctx, "inspect", "-f", `{{with index .NetworkSettings.Networks "`+h.Network2+`"}}{{.IPAddress}} {{.MacAddress}} {{.GlobalIPv6Address}}{{end}}`, name)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// watchAdverts listens on the root namespace's interface iface for an
// unsolicited neighbour advertisement of ip; the function it returns waits
// up to a while for one.
func watchAdverts(t *testing.T, iface string, ip net.IP) func(within time.Duration) bool {
	t.Helper()
	ifc, err := net.InterfaceByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_IPV6)))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IPV6), Ifindex: ifc.Index}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	seen := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer unix.Close(fd)
		buf := make([]byte, 2048)
		tv := unix.Timeval{Usec: 200000}
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, _, err := unix.Recvfrom(fd, buf, 0)
			// Ethernet (14), IPv6 (40, next header ICMPv6), then
			// type 136 and, 8 bytes in, the target.
			if err == nil && n >= 14+40+24 && buf[14+6] == 58 && buf[14+40] == 136 && net.IP(buf[14+48:14+64]).Equal(ip) {
				close(seen)
				return
			}
		}
	}()
	return func(within time.Duration) bool {
		defer close(stop)
		select {
		case <-seen:
			return true
		case <-time.After(within):
			return false
		}
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
