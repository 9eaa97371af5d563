package migrate_test

import "testing"

// TestMixedFleet migrates between the lab's classic hosts (Debian bookworm:
// Docker 20.10, containerd 1.6, runc 1.1, overlay2) and its modern ones
// (Debian testing: Docker 28, containerd 2, runc 1.3; host3 with the
// overlay2 graph driver, host4 with the containerd image store), in every
// direction a fleet being upgraded sees: old to new, new to old, new to
// new, one image store to the other. Each case is one of the classic hosts'
// tests run on another pair of hosts.
func TestMixedFleet(t *testing.T) {
	type pair struct{ src, dst string }
	var (
		old2new   = pair{"host1", "host3"} // 20.10 -> 28, overlay2 both
		new2old   = pair{"host3", "host2"} // 28 -> 20.10
		old2store = pair{"host1", "host4"} // 20.10 overlay2 -> 28 containerd store
		store2old = pair{"host4", "host2"} // 28 containerd store -> 20.10
		new2store = pair{"host3", "host4"} // 28 overlay2 -> 28 containerd store
		store2new = pair{"host4", "host3"} // and back
		stopCopy  = func(t *testing.T, e env) { migrateWorkload(t, e, "stop-and-copy") }
		lazy      = func(t *testing.T, e env) { migrateWorkload(t, e, "lazy") }
		// From an image only the source has: it travels along.
		stopCopyImage = func(t *testing.T, e env) { migrateWorkloadImageMissing(t, e, "stop-and-copy") }
	)
	for _, c := range []struct {
		name  string
		hosts pair
		run   func(*testing.T, env)
	}{
		{"20.10-to-28/stop-and-copy-image-missing", old2new, stopCopyImage},
		{"20.10-to-28/lazy", old2new, lazy},
		{"20.10-to-28/tty", old2new, migrateTTYContainer},
		{"28-to-20.10/stop-and-copy-image-missing", new2old, stopCopyImage},
		{"28-to-20.10/lazy", new2old, lazy},
		{"20.10-to-28-containerd-store/stop-and-copy-image-missing", old2store, stopCopyImage},
		{"20.10-to-28-containerd-store/lazy", old2store, lazy},
		{"28-containerd-store-to-20.10/stop-and-copy-image-missing", store2old, stopCopyImage},
		{"28-containerd-store-to-20.10/published-ports", store2old, func(t *testing.T, e env) { publishedPorts(t, e, "stop-and-copy", 18100, false) }},
		{"20.10-to-28/published-ports", old2new, func(t *testing.T, e env) { publishedPorts(t, e, "lazy", 18110, true) }},
		{"28-to-28-containerd-store/stop-and-copy", new2store, stopCopy},
		{"28-to-28-containerd-store/bind-mounts-copy", new2store, func(t *testing.T, e env) { bindMounts(t, e, "copy") }},
		{"28-containerd-store-to-28/lazy", store2new, lazy},
		{"28-to-28-containerd-store/several-networks", new2store, func(t *testing.T, e env) { severalNetworks(t, e, true) }},
		{"28-to-20.10/several-networks", new2old, func(t *testing.T, e env) { severalNetworks(t, e, false) }},
		{"28-to-20.10/busy-connection", new2old, func(t *testing.T, e env) { busyConnection(t, e, "lazy") }},
		{"28-to-20.10/setting-20.10-lacks", new2old, settingTheDestinationLacks},
		{"28-to-28-containerd-store/tty", new2store, migrateTTYContainer},
		{"28-to-28-containerd-store/restore-fails-lazy", new2store, func(t *testing.T, e env) { failureRestoreFailsOnHost2(t, e, "lazy") }},
		{"28-to-28-containerd-store/destination-killed", new2store, failureDestinationKilledDuringTransfer},
		{"28-containerd-store-to-28/source-killed-in-post-copy", store2new, lazySourceKilledDuringPostCopy},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, setupHosts(t, c.hosts.src, c.hosts.dst)) })
	}
}
