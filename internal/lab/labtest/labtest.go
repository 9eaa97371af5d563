// Package labtest is the lab's side of the tests: skip or fail a test
// whose prerequisites (root, binaries, lab hosts) are missing. It lives
// apart from package lab so that no shipped binary links "testing".
package labtest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
)

// StrictEnv, when set to 1 (as CI and `make test` do), turns every skip for a
// missing prerequisite into a failure: there, the prerequisites were installed
// on purpose and their absence is a bug.
const StrictEnv = "DOCKMOVE_STRICT"

// SkipUnless skips t with reason when ok is false, or fails it in strict mode.
func SkipUnless(t testing.TB, ok bool, reason string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv(StrictEnv) == "1" {
		t.Fatalf("prerequisite missing in strict mode: %s", reason)
	}
	t.Skipf("prerequisite missing: %s", reason)
}

// RequireRoot skips unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	SkipUnless(t, os.Geteuid() == 0, "needs root")
}

// RequireBinary skips unless name is in PATH.
func RequireBinary(t testing.TB, name string) {
	t.Helper()
	_, err := exec.LookPath(name)
	SkipUnless(t, err == nil, name+" not in PATH (run: make deps)")
}

// Require returns the lab's two classic hosts, skipping unless they are up.
func Require(t testing.TB) (host1, host2 lab.Host) {
	t.Helper()
	hosts := RequireHosts(t, "host1", "host2")
	return hosts[0], hosts[1]
}

// RequireHosts returns the named lab hosts, skipping unless they are up
// (host3 and host4, the modern ones, come up with `make lab-up-modern`).
func RequireHosts(t testing.TB, names ...string) []lab.Host {
	t.Helper()
	RequireRoot(t)
	RequireBinary(t, "docker")
	RequireBinary(t, "nsenter")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hosts := make([]lab.Host, len(names))
	for i, name := range names {
		h, err := lab.Load(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		target := "make lab-up"
		if h.Modern {
			target = "make lab-up-modern"
		}
		err = h.Up(ctx)
		SkipUnless(t, err == nil, "lab host "+name+" (run: "+target+"): "+errString(err))
		hosts[i] = h
	}
	return hosts
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
