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

// TestPublishedPortsOnTheDefaultBridge moves what `docker run -p` makes: a
// service on Docker's default bridge with a published port. The bridge is
// each host's own, so the move is refused until the user accepts a new
// address; a port held on host2 (here by another container) is refused
// by name before anything is frozen; then the container moves, its port
// published on host2 (the same one, or the one --remap-port names), where
// clients from outside reach it with its memory intact, and host1 no
// longer answers on it.
func TestPublishedPortsOnTheDefaultBridge(t *testing.T) {
	for i, strategy := range []string{"stop-and-copy", "lazy"} {
		t.Run(strategy, func(t *testing.T) { publishedPorts(t, setup(t), strategy, 18080+10*i, strategy == "lazy") })
	}
}

func publishedPorts(t *testing.T, e env, strategy string, port int, remap bool) {
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	name, blocker := unique("web"), unique("blocker")
	t.Cleanup(func() {
		for _, h := range []lab.Host{e.h1, e.h2} {
			cleanupDocker(h, "rm", "-f", name, blocker)
		}
	})
	publish := fmt.Sprintf("%d:%d", port, lab.WorkloadPort)
	if _, err := e.h1.Docker(ctx, "run", "-d", "--pull", "never", "--name", name, "-p", publish, lab.WorkloadImage,
		"/usr/local/bin/workload", "--mem-mib", "16", "--verify-every", "0"); err != nil {
		t.Fatal(err)
	}
	on := func(h lab.Host, p int) string { return net.JoinHostPort(h.Addr, fmt.Sprint(p)) }
	before := waitBeat(t, ctx, on(e.h1, port), 20)
	bindings := func(h lab.Host) string {
		t.Helper()
		out, err := h.Docker(ctx, "inspect", "-f", "{{json .HostConfig.PortBindings}}", name)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := bindings(e.h1)
	stillOnHost1 := func(why string) {
		t.Helper()
		if st, _ := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name); st != "running" {
			t.Fatalf("after %s the container is %q on host1", why, st)
		}
		if _, err := e.h2.Docker(ctx, "inspect", name); err == nil {
			t.Fatalf("after %s host2 has the container", why)
		}
	}

	_, stderr, err := runSrc(ctx, e, name, nil, "--strategy", strategy)
	if err == nil || !strings.Contains(stderr, `network "bridge" is a bridge, private to each host`) || !strings.Contains(stderr, "--allow-new-address") {
		t.Fatalf("move off the default bridge without --allow-new-address: %v\n%s", err, stderr)
	}
	stillOnHost1("the refusal of a new address")

	if _, err := e.h2.Docker(ctx, "run", "-d", "--pull", "never", "--name", blocker, "-p", publish, lab.BusyboxImage, "sleep", "600"); err != nil {
		t.Fatal(err)
	}
	_, stderr, err = runSrc(ctx, e, name, nil, "--strategy", strategy, "--allow-new-address")
	if held := fmt.Sprintf("host port %d/tcp is published by container %s", port, blocker); err == nil || !strings.Contains(stderr, held) {
		t.Fatalf("move onto a port taken on host2: %v, want %q in\n%s", err, held, stderr)
	}
	stillOnHost1("the refusal of a taken port")

	args := []string{"--strategy", strategy, "--allow-new-address"}
	newPort := port
	if remap {
		// The port stays taken; the container is published elsewhere.
		newPort = port + 1
		args = append(args, "--remap-port", fmt.Sprintf("%d=%d", port, newPort))
		want = strings.Replace(want, fmt.Sprintf(`"HostPort":"%d"`, port), fmt.Sprintf(`"HostPort":"%d"`, newPort), 1)
	} else if _, err := e.h2.Docker(ctx, "rm", "-f", blocker); err != nil {
		t.Fatal(err)
	}
	report, stderr, err := runSrc(ctx, e, name, nil, args...)
	if err != nil {
		t.Fatalf("migration: %v\n%s", err, stderr)
	}
	if !strings.HasPrefix(report.NewAddress, "172.17.") {
		t.Fatalf("new address %q is not on host2's default bridge", report.NewAddress)
	}
	after, err := workload.Query(ctx, on(e.h2, newPort), workload.CmdVerify)
	if err != nil || after.Bad != 0 || !after.Continues(before) {
		t.Fatalf("the service at host2's published port: %+v, %v (before: %+v)", after, err, before)
	}
	if got := bindings(e.h2); got != want {
		t.Fatalf("published ports on host2 %s, want %s", got, want)
	}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if c, err := (&net.Dialer{}).DialContext(dctx, "tcp", on(e.h1, port)); err == nil {
		c.Close()
		t.Fatalf("host1 still answers on port %d after the move", port)
	}
	assertHost2Clean(t, ctx, e, name, false)
}
