package criu

import "strings"

// A knownCause is a CRIU failure that dockmove has met, or that restoring
// Docker containers is known for, with what it means for a migration and
// what to do. Matched against the first real error CRIU logged.
type knownCause struct {
	match []string // any of these in the cause
	means string
	todo  string
}

var knownCauses = []knownCause{
	{[]string{"in-flight socket"},
		"a client of a Unix socket in the container had connected (and written) before the server accepted: CRIU cannot dump such a connection",
		"dockmove dumps again (three dumps in all); if every dump meets it, the server is not accepting connections: look at the application"},
	{[]string{"Unsupported proto 262"},
		"a process uses a Multipath TCP socket, which CRIU cannot dump (Go 1.24 and later open MPTCP listeners by default where the kernel has MPTCP)",
		"turn MPTCP off for the application (Go: GODEBUG=multipathtcp=0) or on the host (sysctl net.mptcp.enabled=0), then restart the container"},
	{[]string{"Can't get 1:16 opt"},
		"this CRIU cannot read TCP sockets on this kernel (CRIU before 4.2.1 with Linux 6.16 or later)",
		"install CRIU 4.2.1 or later (make deps builds it)"},
	{[]string{"Can't dump ghost file"},
		"a process keeps a deleted file open that is larger than the ghost file limit (a rotated log, say)",
		"raise migrate-src --ghost-limit, or have the application close or truncate the file"},
	{[]string{"is autodetected external mount"},
		"the container has a mount dockmove did not declare to CRIU (mounted from outside after it started, or by a volume plugin)",
		"remove the mount or recreate the container with it declared (-v / --mount); report it if Docker made it"},
	{[]string{"Unknown peer net namespace"},
		"an interface in the container has its peer in a network namespace CRIU does not know (a veth pair the container made itself, or a netns not handed to the restore)",
		"containers holding such interfaces cannot move; if Docker made it, report it with the log"},
	{[]string{"has bad size"},
		"a file a process has open or mapped differs on the destination (a binary or library of the image, or docker-init, is another build there)",
		"give both hosts the same image (let dockmove ship it: remove the destination's copy), and the same Docker release for --init containers"},
	{[]string{"Can't restore pipe size", "Unable to set a pipe size"},
		"a pipe is larger than this host lets an unprivileged process make it (fs.pipe-max-size; CAP_SYS_RESOURCE would lift it)",
		"raise fs.pipe-max-size to 16 MiB on both hosts (sysctl fs.pipe-max-size=16777216; make deps does)"},
	{[]string{"Can't get rlimit"},
		"CRIU cannot read the limits of a process of another user without CAP_SYS_RESOURCE",
		"run the agents with CAP_SYS_RESOURCE, or use the CRIU make deps builds (its rlimits patch)"},
	{[]string{"Can't find suitable path for handle"},
		"a process watches a file with inotify on the container's overlay file system, whose file handles CRIU cannot turn back into paths",
		"have the application stop watching files before the move, or move it by stop-and-copy after restarting it without watches"},
	{[]string{"BUG at criu/mount.c"},
		"CRIU met a mount tree it cannot rebuild: mounts stacked on one path, a mount made inside a volume or bind mount after the container started, or mounts that differ from what Docker declared (the classic failure of restoring a Docker container by hand into another container's mounts)",
		"unmount what was mounted on top of another mount inside the container (or recreate it with each mount declared once), then migrate again; if Docker made the layout, report it with the kept log"},
	{[]string{"Tracking memory is not available", "Dirty tracking is OFF"},
		"this kernel does not track dirty memory (no soft-dirty bits: CONFIG_MEM_SOFT_DIRTY is off, as on arm64 and some cloud kernels), so pre-copy rounds cannot be made",
		"migrate with --strategy lazy or stop-and-copy (auto picks one of them on such a host)"},
	{[]string{"Address already assigned"},
		"the restored container's address is taken on the destination (another container or a leftover of an earlier restore by hand)",
		"free the address on the destination, or move with --allow-new-address"},
}

// explain returns what a CRIU cause means and what to do, if it is known.
func explain(cause string) (means, todo string, ok bool) {
	for _, k := range knownCauses {
		for _, m := range k.match {
			if strings.Contains(cause, m) {
				return k.means, k.todo, true
			}
		}
	}
	return "", "", false
}
