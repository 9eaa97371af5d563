package migrate_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestContainerOfAnotherUser: a container whose processes run as another
// user. CRIU must read their resource limits, which takes CAP_SYS_RESOURCE;
// on a host whose root lacks it (this lab's machine: the dump failed with
// "Can't get rlimit 0: Operation not permitted", the container frozen for
// nothing) migrate-src refuses before connecting, naming the processes
// and what to do; with the capability the container moves.
func TestContainerOfAnotherUser(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	name := unique("user")
	runIdle(t, ctx, e, name, "--user", "1000:1000", "--network", e.h1.Network)
	r, stderr, err := runSrc(ctx, e, name, nil)
	if capSysResource(t) {
		if err != nil {
			t.Fatalf("with CAP_SYS_RESOURCE the container should move: %v\n%s", err, stderr)
		}
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
