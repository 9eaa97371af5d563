package migrate_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/workload"
)

// TestSeveralNetworks moves a container on two networks (the lab's two
// macvlan segments, eth0 on the first, eth1 on the second) to host2 and
// back: each interface keeps its name, address and MAC as the processes
// see them, a client connected through each network keeps its
// connection, and the memory verifies. A container whose interfaces
// host2's Docker would number otherwise (before Docker 28 it names them
// itself) is refused before anything is frozen; Docker 28 keeps them.
func TestSeveralNetworks(t *testing.T) {
	e := setup(t)
	t.Run("there-and-back", func(t *testing.T) { severalNetworks(t, e, false) })
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
	before := waitBeat(t, ctx, addrs[0], 20)
	watches := []*workload.Watcher{watchBeats(t, ctx, addrs[0], 5), watchBeats(t, ctx, addrs[1], 5)}
	want := interfaces(t, ctx, e.h1, name)
	wantInspect := networkIdentity(t, ctx, e.h1, name)
	t.Logf("on %s:\n%s\n%s", e.h1.Name, want, wantInspect)

	refusal := ""
	switch {
	case swapped && !e.h2.Modern:
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
		if _, stderr, err := runSrc(ctx, move.e, name, nil, "--strategy", move.strategy); err != nil {
			t.Fatalf("%s: %v\n%s", step, err, stderr)
		}
		if got := interfaces(t, ctx, move.e.h2, name); got != want {
			t.Fatalf("after %s the container's interfaces are\n%s\nnot as before\n%s", step, got, want)
		}
		if got := networkIdentity(t, ctx, move.e.h2, name); got != wantInspect {
			t.Fatalf("after %s docker inspect says %s, not %s", step, got, wantInspect)
		}
		v, err := workload.Query(ctx, addrs[1], workload.CmdVerify)
		if err != nil || v.Bad != 0 || v.Counter < before.Counter {
			t.Fatalf("after %s, through the second network: %+v (before %+v), %v", step, v, before, err)
		}
		for i, w := range watches {
			if err := w.WaitBeats(ctx, w.Stats().Beats+5); err != nil {
				t.Fatalf("after %s, the client on eth%d: %v", step, i, err)
			}
		}
	}
	for i, w := range watches {
		if s := w.Stop(); s.SeqBreaks != 0 || s.Resets != 0 || s.Err != nil {
			t.Fatalf("the client on eth%d over both moves: %+v", i, s)
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
// networks: each one's address and MAC.
func networkIdentity(t *testing.T, ctx context.Context, h lab.Host, name string) string {
	t.Helper()
	out, err := h.Docker(ctx, "inspect", "-f", `{{range $n, $ep := .NetworkSettings.Networks}}{{$n}}={{$ep.IPAddress}},{{$ep.MacAddress}} {{end}}`, name)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
