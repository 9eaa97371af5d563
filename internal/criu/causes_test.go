package criu

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKnownCausesAreExplained: for each known cause, a log as CRIU writes
// it (lines in its format, messages from its sources or from runs here,
// after the harmless rlimit line this host always logs): the error leads
// with the cause and says what it means and what to do.
func TestKnownCausesAreExplained(t *testing.T) {
	const noise = "(00.000100) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted\n"
	for _, c := range []struct {
		name, line, means string
	}{
		{"in-flight Unix connection (seen here, PostgreSQL)", "(00.394351) Error (criu/sk-unix.c:506): unix: Non-empty write queue on an in-flight socket 0x24709c", "accepted"},
		{"closed in-flight connection", "(00.211000) Error (criu/sk-unix.c:525): unix: Found a closed in-flight socket to 0x1f3a", "accepted"},
		{"MPTCP", "(00.081220) Error (criu/sk-inet.c:137): inet: Unsupported proto 262 for socket 2b8e1", "Multipath TCP"},
		{"TCP on an old CRIU (seen here, 4.1.1 on 6.18)", "(00.102030) Error (criu/sockets.c:640): sockets: Can't get 1:16 opt: Operation not supported", "4.2.1"},
		{"ghost file over the limit", "(00.300000) Error (criu/files-reg.c:1031): Can't dump ghost file /var/log/app.log.1 of 73400320 size, increase limit", "ghost"},
		{"undeclared mount", `(00.050000) Error (criu/mount.c:3120): mnt: Mount 1234:/mnt/x is autodetected external mount. Try "--ext-mount-map auto" to allow them.`, "did not declare"},
		{"veth peer elsewhere", "(00.420000) Error (criu/net.c:1469): net: Unknown peer net namespace", "peer"},
		{"file differs (seen here, docker-init)", "(00.056187)      1: Error (criu/files-reg.c:2175): File sbin/docker-init has bad size 752504 (expect 708080)", "differs"},
		{"pipe size", "(00.710000)     12: Error (criu/pipes.c:164): Can't restore pipe size: Operation not permitted", "fs.pipe-max-size"},
		{"another user's limits (seen here)", "(00.033000) Error (criu/cr-dump.c:442): Can't get rlimit 0: Operation not permitted", "CAP_SYS_RESOURCE"},
		{"inotify on overlay", "(00.140000) Error (criu/fsnotify.c:263): fsnotify: Can't find suitable path for handle (dev 0x2f ino 0x1a2b): -2", "inotify"},
		{"mount tree CRIU cannot rebuild", "(00.061000) Error (criu/mount.c:2573): mnt: BUG at criu/mount.c:2573", "mount tree"},
		{"no soft-dirty (seen here: criu pre-dump --track-mem on this kernel)", "(00.043928) Error (criu/config.c:1131): Tracking memory is not available. Consider omitting --track-mem option.", "soft-dirty"},
		{"address taken", "(00.900000) Error (criu/libnetlink.c:54): -17 reported by netlink: Address already assigned", "taken"},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "dump.log")
			os.WriteFile(log, []byte(noise+"(00.3) some context\n"+c.line+"\n(00.5) Error (criu/cr-dump.c:2031): Dumping FAILED.\n"), 0o600)
			e := NewError("dump", log, errors.New("rpc: dump failed"))
			msg := e.Error()
			_, cause, _ := strings.Cut(c.line, "): ")
			if !strings.HasPrefix(msg, "criu dump failed: "+cause) {
				t.Fatalf("headline: %s", msg)
			}
			if !strings.Contains(msg, "what it means: ") || !strings.Contains(msg, "what to do: ") || !strings.Contains(msg, c.means) {
				t.Fatalf("no explanation naming %q:\n%s", c.means, msg)
			}
		})
	}
	e := NewError("dump", filepath.Join(t.TempDir(), "missing.log"), errors.New("rpc"))
	if strings.Contains(e.Error(), "what it means") {
		t.Fatalf("an unknown cause explained: %s", e.Error())
	}
}
