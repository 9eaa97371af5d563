package migrate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/protocol"
)

// TestInitContainerMoves moves an --init container (docker-init, tini, as
// its PID 1): between two Docker 20.10 hosts, whose docker-init is the
// same file, and from 20.10 to 28, whose docker-init is another build of
// another size (CRIU refused that restore: "File sbin/docker-init has bad
// size 752504 (expect 708080)"). The source's docker-init travels; on
// host2 the shell goes on under it, it forwards `docker stop`'s signal,
// and the container starts again with host2's own.
func TestInitContainerMoves(t *testing.T) {
	for _, c := range []struct{ name, src, dst, strategy string }{
		{"20.10-to-20.10/stop-and-copy", "host1", "host2", "stop-and-copy"},
		{"20.10-to-28/lazy", "host1", "host3", "lazy"},
	} {
		t.Run(c.name, func(t *testing.T) { migrateInitContainer(t, setupHosts(t, c.src, c.dst), c.strategy) })
	}
}

func migrateInitContainer(t *testing.T, e env, strategy string) {
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	name := unique("init")
	runIdleCmd(t, ctx, e, name, []string{"--init", "--network", e.h1.Network}, "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.05; done")
	count := func(h lab.Host) int { return counter(t, ctx, h, name) }
	for count(e.h1) < 10 {
		time.Sleep(50 * time.Millisecond)
	}
	before := count(e.h1)
	r, stderr, err := runSrc(ctx, e, name, nil, "--strategy", strategy)
	if err != nil {
		t.Fatalf("migration failed: %v\n%s", err, stderr)
	}
	if st := r.Streams[protocol.StreamInit]; st.Bytes == 0 {
		t.Errorf("no docker-init shipped: streams %v", r.Streams)
	}
	first := count(e.h2)
	time.Sleep(300 * time.Millisecond)
	if later := count(e.h2); first < before || later <= first {
		t.Fatalf("counter %d on host1, then %d and %d on host2: the shell did not go on", before, first, later)
	}
	if pid1 := initCommand(t, ctx, e.h2, name); !strings.HasPrefix(pid1, "/sbin/docker-init ") {
		t.Fatalf("host2's container runs %q as its first process, not docker-init", pid1)
	}
	if init, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.HostConfig.Init}}", name); init != "true" {
		t.Fatalf("HostConfig.Init on host2: %q", init)
	}
	// tini forwards SIGTERM to the shell, which ends at once: 143, not
	// the 137 of a kill after the stop timeout.
	if _, err := e.h2.Docker(ctx, "stop", "-t", "20", name); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.State.ExitCode}}", name); code != "143" {
		t.Fatalf("exit code after docker stop on host2: %s (docker-init did not forward SIGTERM)", code)
	}
	if _, err := e.h2.Docker(ctx, "start", name); err != nil {
		t.Fatalf("the moved container does not start again on host2: %v", err)
	}
	restarted := count(e.h2)
	for deadline := time.Now().Add(10 * time.Second); count(e.h2) <= restarted && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if pid1, c := initCommand(t, ctx, e.h2, name), count(e.h2); !strings.HasPrefix(pid1, "/sbin/docker-init ") || c <= restarted {
		t.Fatalf("after docker start on host2: first process %q, counter %d (%d just after the start)", pid1, c, restarted)
	}
}

// counter reads the loop's count in container name on h. The shell
// truncates the file before it writes the next count: an empty read is
// read again.
func counter(t *testing.T, ctx context.Context, h lab.Host, name string) int {
	t.Helper()
	var out string
	for try := 0; out == "" && try < 20; try++ {
		var err error
		if out, err = h.Docker(ctx, "exec", name, "cat", "/tmp/count"); err != nil {
			t.Fatal(err)
		}
		out = strings.TrimSpace(out)
	}
	var n int
	for _, c := range strings.TrimSpace(out) {
		n = n*10 + int(c-'0')
	}
	return n
}

// initCommand is the command line of the container's PID 1.
func initCommand(t *testing.T, ctx context.Context, h lab.Host, name string) string {
	t.Helper()
	out, err := h.Docker(ctx, "exec", name, "cat", "/proc/1/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(out, "\x00", " ")
}
