package migrate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
)

// A container on a swarm network is refused before freezing: the swarm's
// manager hands out that network's addresses for the whole cluster and
// would not give the container's address to host2 while host1's holds it
// (tried: host2's start waited 20 s for the manager, failed, and the
// container had been frozen all along). The source refuses an overlay
// network; host2 refuses a network that is swarm-scoped there, whatever
// the source says of it.
func TestSwarmNetworksRefusedBeforeFreezing(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	dst := startDst(t, e)
	leave := func() {
		for _, h := range []lab.Host{e.h1, e.h2} {
			cleanupDocker(h, "swarm", "leave", "--force")
			cleanupDocker(h, "network", "rm", "docker_gwbridge")
		}
	}
	t.Cleanup(leave)
	must := func(t *testing.T, h lab.Host, args ...string) string {
		t.Helper()
		out, err := h.Docker(ctx, args...)
		if err != nil {
			t.Fatalf("docker %v on %s: %v", args, h.Name, err)
		}
		return out
	}

	t.Run("overlay", func(t *testing.T) {
		must(t, e.h1, "swarm", "init", "--advertise-addr", e.h1.Addr, "--listen-addr", e.h1.Addr+":2377")
		token := must(t, e.h1, "swarm", "join-token", "-q", "worker")
		must(t, e.h2, "swarm", "join", "--token", token, "--advertise-addr", e.h2.Addr, e.h1.Addr+":2377")
		ov := unique("ov")
		must(t, e.h1, "network", "create", "-d", "overlay", "--attachable", "--subnet", "10.99.0.0/24", ov)
		t.Cleanup(func() { cleanupDocker(e.h1, "network", "rm", ov) })
		name := unique("swarm")
		addr := runWorkload(t, ctx, e, name, lab.WorkloadImage)
		must(t, e.h1, "network", "connect", "--ip", "10.99.0.50", ov, name)
		before := waitBeat(t, ctx, addr, 0)
		_, stderr, err := runSrc(ctx, e, name, nil)
		failedMigration(t, ctx, e, name, addr, before, err, stderr, `network "`+ov+`" is a swarm network`)
		assertHost2Clean(t, ctx, e, name, true)
		cleanupDocker(e.h1, "rm", "-f", name)
		leave()
	})

	t.Run("swarm-scoped-on-host2", func(t *testing.T) {
		// host2 runs a swarm of its own, with a swarm-scoped macvlan
		// network; host1 has a local bridge of the same name (the
		// container may take a new address there).
		must(t, e.h2, "swarm", "init", "--advertise-addr", e.h2.Addr, "--listen-addr", e.h2.Addr+":2377")
		net := unique("sw")
		must(t, e.h2, "network", "create", "--config-only", "--subnet", "10.98.0.0/24", "-o", "parent=eth0", net+"-config")
		must(t, e.h2, "network", "create", "-d", "macvlan", "--scope", "swarm", "--attachable", "--config-from", net+"-config", net)
		t.Cleanup(func() { cleanupDocker(e.h2, "network", "rm", net, net+"-config") })
		must(t, e.h1, "network", "create", "-d", "bridge", "--subnet", "10.98.0.0/24", net)
		t.Cleanup(func() { cleanupDocker(e.h1, "network", "rm", net) })
		name := unique("swarm")
		addr := runWorkload(t, ctx, e, name, lab.WorkloadImage)
		must(t, e.h1, "network", "connect", "--ip", "10.98.0.50", net, name)
		before := waitBeat(t, ctx, addr, 0)
		_, stderr, err := runSrc(ctx, e, name, nil, "--allow-new-address")
		failedMigration(t, ctx, e, name, addr, before, err, stderr, `network "`+net+`" is a swarm network`)
		assertHost2Clean(t, ctx, e, name, true)
		if log := dst.Log(); !strings.Contains(log, `is a swarm network`) {
			t.Errorf("migrate-dst's log does not name its refusal:\n%s", log)
		}
		cleanupDocker(e.h1, "rm", "-f", name)
	})
}
