package migrate_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/criu"
)

// TestContainerOfAnotherUser: a container whose processes run as another
// user, with a lowered open-files limit. CRIU must read their resource
// limits: with prlimit() that takes CAP_SYS_RESOURCE, which the lab
// machine's root lacks (stock CRIU failed the dump with "Can't get rlimit
// 0: Operation not permitted", the container frozen for nothing); the CRIU
// scripts/deps.sh builds reads /proc/PID/limits instead. With either, the
// container moves lazily and keeps its user and limits; with neither,
// migrate-src refuses before connecting, naming the processes and what to
// do.
func TestContainerOfAnotherUser(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	name := unique("user")
	runIdle(t, ctx, e, name, "--user", "1000:1000", "--ulimit", "nofile=777:888", "--network", e.h1.Network)
	r, stderr, err := runSrc(ctx, e, name, nil, "--strategy", "lazy")
	if capSysResource(t) || criu.ReadsLimitsFromProc(ctx, "") {
		if err != nil {
			t.Fatalf("the container should move: %v\n%s", err, stderr)
		}
		for cmd, want := range map[string]string{
			"id -u; id -g": "1000\n1000",
			// PID 1's own limits (docker exec gives its processes others).
			"grep 'open files' /proc/1/limits | tr -s ' '": "Max open files 777 888 files",
		} {
			if out, err := e.h2.Docker(ctx, "exec", name, "sh", "-c", cmd); err != nil || out != want {
				t.Fatalf("on host2, %s: %q, %v; want %q", cmd, out, err, want)
			}
		}
		t.Logf("moved (%s, freeze %v) with the user and its limits", r.Strategy, r.FreezeTime)
		return
	}
	if err == nil || !strings.Contains(stderr, "run as another user") || !strings.Contains(stderr, "uid 1000/1000/1000") || !strings.Contains(stderr, "CAP_SYS_RESOURCE") {
		t.Fatalf("without CAP_SYS_RESOURCE: err %v, want a refusal naming the processes and the capability:\n%s", err, stderr)
	}
	if _, connected := r.Stages["connect"]; connected {
		t.Fatalf("refused only after connecting: stages %v", r.Stages)
	}
	if state, _ := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Running}}", name); state != "true" {
		t.Fatalf("on host1 after the refusal: running=%s", state)
	}
}

// capSysResource reports whether this process (and so migrate-src, run
// by it as root) has CAP_SYS_RESOURCE.
func capSysResource(t *testing.T) bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<24) != 0
		}
	}
	return false
}
