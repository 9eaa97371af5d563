package migrate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
)

// TestDestinationRefusesCapabilitiesOutsideItsPolicy: a container that adds capabilities
// beyond Docker's default set (here SYS_ADMIN and NET_ADMIN, with which a
// container can escape or rewire its host) is refused by the destination
// itself, before anything is frozen, naming them; the container runs on
// and host2 holds nothing. With `migrate-dst --allow-cap` naming them the
// same container moves, and keeps them.
func TestDestinationRefusesCapabilitiesOutsideItsPolicy(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	name := unique("caps")
	addr := runWorkload(t, ctx, e, name, lab.WorkloadImage, "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--cap-add", "CHOWN")
	before := waitBeat(t, ctx, addr, 0)

	strict := startDst(t, e)
	_, stderr, err := runSrc(ctx, e, name, nil)
	failedMigration(t, ctx, e, name, addr, before, err, stderr, "capabilities this destination does not allow")
	if !strings.Contains(stderr, "SYS_ADMIN") || !strings.Contains(stderr, "NET_ADMIN") || strings.Contains(stderr, "CHOWN") {
		t.Fatalf("the refusal should name SYS_ADMIN and NET_ADMIN, not CHOWN (a default):\n%s", stderr)
	}
	if strings.Contains(stderr, "] dump") {
		t.Fatalf("the container was frozen before the refusal:\n%s", stderr)
	}
	if after := waitBeat(t, ctx, addr, before.Counter+1); after.Bad != 0 {
		t.Fatalf("after the refusal: %+v", after)
	}
	assertHost2Clean(t, ctx, e, name, true)
	strict.Stop()

	startDst(t, e, "--allow-cap", "sys_admin,NET_ADMIN")
	if _, stderr, err := runSrc(ctx, e, name, nil); err != nil {
		t.Fatalf("migration with the capabilities allowed: %v\n%s", err, stderr)
	}
	caps, err := e.h2.Docker(ctx, "inspect", "-f", "{{.HostConfig.CapAdd}}", name)
	if err != nil || !strings.Contains(caps, "SYS_ADMIN") || !strings.Contains(caps, "NET_ADMIN") {
		t.Fatalf("capabilities on host2: %q, %v", caps, err)
	}
	if v := waitBeat(t, ctx, addr, 0); v.Bad != 0 {
		t.Fatalf("on host2: %+v", v)
	}
}
