package migrate_test

import (
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
)

// TestDeletedOpenFilesMove: a process holding a 5 MiB file open after
// deleting it (as a rotated log or an unlinked temporary file is) used to
// fail the dump, with the container frozen, on CRIU's 1 MiB ghost-file
// limit. Over --ghost-limit it is refused before freezing, naming the file;
// under the default limit it moves and the process still reads the same
// bytes through its descriptor on host2.
func TestDeletedOpenFilesMove(t *testing.T) {
	e := setup(t)
	startDst(t, e)
	ctx := ctxFor(t, 3*time.Minute)
	name := unique("ghost")
	if _, err := e.h1.Docker(ctx, "run", "-d", "--pull", "never", "--name", name, "--network", e.h1.Network, lab.BusyboxImage, "sh", "-c",
		"head -c 5242880 /dev/urandom > /tmp/rotated.log; exec 3</tmp/rotated.log; rm /tmp/rotated.log; "+
			"md5sum /proc/self/fd/3 > /sum; while sleep 1; do :; done"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, h := range []lab.Host{e.h1, e.h2} {
			cleanupDocker(h, "rm", "-f", name)
		}
	})
	sum := func(h lab.Host, file string) string {
		out, err := h.Docker(ctx, "exec", name, "md5sum", file)
		if err != nil {
			return ""
		}
		return strings.Fields(out)[0]
	}
	var before string
	for deadline := time.Now().Add(30 * time.Second); before == ""; time.Sleep(200 * time.Millisecond) {
		if out, err := e.h1.Docker(ctx, "exec", name, "cat", "/sum"); err == nil && out != "" {
			before = strings.Fields(out)[0]
		}
		if time.Now().After(deadline) {
			t.Fatal("the container never wrote /sum")
		}
	}

	report, stderr, err := runSrc(ctx, e, name, nil, "--ghost-limit", "1MiB")
	if err == nil || !strings.Contains(stderr, "/tmp/rotated.log") || !strings.Contains(stderr, "--ghost-limit") {
		t.Fatalf("over the limit: err %v, want a refusal naming the file:\n%s", err, stderr)
	}
	if _, frozen := report.Stages["dump"]; frozen {
		t.Fatalf("the container was frozen before the refusal: stages %v", report.Stages)
	}
	if got := sum(e.h1, "/proc/1/fd/3"); got != before {
		t.Fatalf("on host1 after the refusal: %q, want %q", got, before)
	}

	if _, stderr, err := runSrc(ctx, e, name, nil); err != nil {
		t.Fatalf("migrate: %v\n%s", err, stderr)
	}
	if got := sum(e.h2, "/proc/1/fd/3"); got != before {
		t.Fatalf("the deleted file read on host2: %q, want %q", got, before)
	}
}

// TestAnonymousVolumeMovesAndLeavesNothing: a container with an anonymous
// volume (`-v /cache`) moves with its data; host1's copy of the volume,
// which only that container used, is removed with it (it used to be left
// behind), and host2's copy is anonymous too: `docker rm -v` removes it.
func TestAnonymousVolumeMovesAndLeavesNothing(t *testing.T) {
	e := setup(t)
	startDst(t, e)
	ctx := ctxFor(t, 3*time.Minute)
	name := unique("anon")
	if _, err := e.h1.Docker(ctx, "run", "-d", "--pull", "never", "--name", name, "--network", e.h1.Network, "-v", "/cache", lab.BusyboxImage,
		"sh", "-c", "echo kept > /cache/stamp; while sleep 1; do :; done"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, h := range []lab.Host{e.h1, e.h2} {
			cleanupDocker(h, "rm", "-f", "-v", name)
		}
	})
	vol, err := e.h1.Docker(ctx, "inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", name)
	vol = strings.TrimSpace(vol)
	if err != nil || vol == "" {
		t.Fatalf("anonymous volume: %q, %v", vol, err)
	}
	t.Cleanup(func() { cleanupDocker(e.h2, "volume", "rm", "-f", vol) })
	if _, stderr, err := runSrc(ctx, e, name, nil); err != nil {
		t.Fatalf("migrate: %v\n%s", err, stderr)
	}
	if out, err := e.h2.Docker(ctx, "exec", name, "cat", "/cache/stamp"); err != nil || strings.TrimSpace(out) != "kept" {
		t.Fatalf("the volume's data on host2: %q, %v", out, err)
	}
	if _, err := e.h1.Docker(ctx, "volume", "inspect", vol); err == nil {
		t.Fatalf("host1 still holds the container's anonymous volume %s", vol)
	}
	// Anonymous on host2 too: `docker rm -v` there removes it, as it did
	// on host1 (a volume mounted by name would stay behind).
	vol2, err := e.h2.Docker(ctx, "inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", name)
	vol2 = strings.TrimSpace(vol2)
	if err != nil || vol2 == "" {
		t.Fatalf("host2's volume for /cache: %q, %v", vol2, err)
	}
	t.Cleanup(func() { cleanupDocker(e.h2, "volume", "rm", "-f", vol2) })
	if _, err := e.h2.Docker(ctx, "rm", "-f", "-v", name); err != nil {
		t.Fatal(err)
	}
	if _, err := e.h2.Docker(ctx, "volume", "inspect", vol2); err == nil {
		t.Fatalf("docker rm -v on host2 left the container's anonymous volume %s behind", vol2)
	}
}
