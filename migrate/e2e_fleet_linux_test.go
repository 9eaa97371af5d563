package migrate_test

import "testing"

// TestMixedFleet migrates between the lab's classic hosts (Debian bookworm:
// Docker 20.10, containerd 1.6, runc 1.1) and its modern ones (Debian
// testing: Docker 28, containerd 2, runc 1.3), in every direction a fleet
// being upgraded sees: old to new, new to old, new to new. Each case is one
// of the classic hosts' tests run on another pair of hosts.
func TestMixedFleet(t *testing.T) {
	type pair struct{ src, dst string }
	old2new, new2old, new2new := pair{"host1", "host3"}, pair{"host3", "host2"}, pair{"host3", "host4"}
	for _, c := range []struct {
		name  string
		hosts pair
		run   func(*testing.T, env)
	}{
		{"20.10-to-28/stop-and-copy", old2new, func(t *testing.T, e env) { migrateWorkload(t, e, "stop-and-copy") }},
		{"20.10-to-28/lazy", old2new, func(t *testing.T, e env) { migrateWorkload(t, e, "lazy") }},
		{"20.10-to-28/tty", old2new, migrateTTYContainer},
		{"20.10-to-28/image-missing", old2new, migrateImageMissingOnHost2},
		{"28-to-20.10/stop-and-copy", new2old, func(t *testing.T, e env) { migrateWorkload(t, e, "stop-and-copy") }},
		{"28-to-20.10/lazy", new2old, func(t *testing.T, e env) { migrateWorkload(t, e, "lazy") }},
		{"28-to-20.10/image-missing", new2old, migrateImageMissingOnHost2},
		{"28-to-28/stop-and-copy", new2new, func(t *testing.T, e env) { migrateWorkload(t, e, "stop-and-copy") }},
		{"28-to-28/lazy", pair{"host4", "host3"}, func(t *testing.T, e env) { migrateWorkload(t, e, "lazy") }},
		{"28-to-28/tty", new2new, migrateTTYContainer},
		{"28-to-28/restore-fails", new2new, failureRestoreFailsOnHost2},
		{"28-to-28/destination-killed", new2new, failureDestinationKilledDuringTransfer},
		{"28-to-28/source-killed-in-post-copy", new2new, lazySourceKilledDuringPostCopy},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, setupHosts(t, c.hosts.src, c.hosts.dst)) })
	}
}
