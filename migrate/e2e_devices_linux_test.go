package migrate_test

import (
	"strings"
	"testing"
	"time"
)

// TestDeviceNodesInTheLayer: device nodes a process made in the
// container's writable layer (mknod is one of Docker's default
// capabilities). One a container may use (a console, c 5:1) moves with its
// number; one it may not (a disk, b 8:0) is refused before anything is
// frozen, named, and the container runs on host1 as before. host2 used to
// refuse any device node in the stream, after the whole dump.
func TestDeviceNodesInTheLayer(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	name := unique("devices")
	runIdleCmd(t, ctx, e, name, []string{"--network", e.h1.Network},
		"mkdir -p /tmp/nodes && mknod /tmp/nodes/console2 c 5 1 && mknod /tmp/nodes/sda b 8 0 && while sleep 1; do :; done")
	stat := func(path string) string {
		for range 50 {
			out, err := e.h1.Docker(ctx, "exec", name, "stat", "-c", "%F %t:%T", path)
			if err == nil {
				return out
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s never appeared in the container", path)
		return ""
	}
	stat("/tmp/nodes/sda")
	before := stat("/tmp/nodes/console2")

	r, stderr, err := runSrc(ctx, e, name, nil)
	if err == nil || !strings.Contains(stderr, "tmp/nodes/sda (b 8:0)") {
		t.Fatalf("a disk's node in the layer: err %v, want a refusal naming it:\n%s", err, stderr)
	}
	if _, frozen := r.Stages["dump"]; frozen {
		t.Fatalf("refused only after the dump began: stages %v", r.Stages)
	}
	if state, _ := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Running}}", name); state != "true" {
		t.Fatalf("on host1 after the refusal: running=%s", state)
	}
	if _, err := e.h1.Docker(ctx, "exec", name, "rm", "/tmp/nodes/sda"); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runSrc(ctx, e, name, nil); err != nil {
		t.Fatalf("migration failed: %v\n%s", err, stderr)
	}
	after, err := e.h2.Docker(ctx, "exec", name, "stat", "-c", "%F %t:%T", "/tmp/nodes/console2")
	if err != nil || after != before {
		t.Fatalf("the console node on host2: %q (%v), on host1 it was %q", after, err, before)
	}
}
