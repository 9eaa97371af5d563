package migrate_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// bindsDir holds the bind mounts' host directories; the lab's modern
// dockerds see it at the same path.
const bindsDir = "/var/lib/dockmove-lab/binds"

// TestBindMounts moves a container whose process keeps a file open in a
// bind mount of a host directory, appending to it. Without --bind-mounts
// the move is refused, naming both options. With copy, the directory's
// contents (written up to the freeze) land below host2's bind base, the
// process goes on appending to its copy there, and a failed restore leaves
// no directory behind. With shared (the lab's hosts share one file
// system, as hosts on NFS do), the process goes on appending to the very
// same file, and the source's marker is gone.
func TestBindMounts(t *testing.T) {
	for _, mode := range []string{"copy", "shared"} {
		t.Run(mode, func(t *testing.T) { bindMounts(t, setup(t), mode) })
	}
}

func bindMounts(t *testing.T, e env, mode string) {
	ctx := ctxFor(t, 3*time.Minute)
	name := unique("bind")
	copyBase, sharedBase := filepath.Join(bindsDir, e.h2.Name), filepath.Join(bindsDir, "shared")
	src := filepath.Join(bindsDir, "src-"+name)
	if mode == "shared" {
		src = filepath.Join(sharedBase, name)
	}
	landed := src
	if mode == "copy" {
		landed = filepath.Join(copyBase, src)
	}
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	// What earlier runs copied below host2's base goes first: a failed
	// migration must leave nothing there.
	os.RemoveAll(filepath.Join(copyBase, "var"))
	t.Cleanup(func() { os.RemoveAll(src); os.RemoveAll(filepath.Join(copyBase, "var")) })
	if err := os.WriteFile(filepath.Join(src, "sub", "before"), []byte("from host1"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The process holds /conf/log open and appends a line every 100 ms.
	runIdleCmd(t, ctx, e, name, []string{"--network", e.h1.Network, "-v", src + ":/conf"},
		"exec 3>>/conf/log; while :; do echo tick >&3; sleep 0.1; done")
	lines := func(path string) int {
		b, _ := os.ReadFile(path)
		return strings.Count(string(b), "tick")
	}

	_, stderr, err := runSrc(ctx, e, name, nil)
	if err == nil || !strings.Contains(stderr, "--bind-mounts copy ships its contents") || !strings.Contains(stderr, "--bind-mounts shared") {
		t.Fatalf("a bind mount without --bind-mounts: %v\n%s", err, stderr)
	}
	strategy := "stop-and-copy"
	if mode == "copy" {
		// A restore that fails removes the directory it made.
		d := startDst(t, e, "--bind-base", copyBase, "--restore-criu-option", "no-such-criu-option")
		_, stderr, err := runSrc(ctx, e, name, nil, "--bind-mounts", mode)
		if err == nil || !strings.Contains(stderr, "criu restore") {
			t.Fatalf("migration with a failing restore: %v\n%s", err, stderr)
		}
		if _, err := os.Stat(filepath.Join(copyBase, bindsDir)); err == nil {
			t.Fatalf("a failed migration left the bind mount's copy below %s", copyBase)
		}
		d.Stop()
	} else {
		strategy = "lazy"
	}
	if st, _ := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name); st != "running" {
		t.Fatalf("after the refusals the container is %q on host1", st)
	}
	startDst(t, e, "--bind-base", copyBase, "--bind-base", sharedBase)
	if _, err := e.h1.Docker(ctx, "exec", name, "sh", "-c", "echo late > /conf/sub/late"); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runSrc(ctx, e, name, nil, "--bind-mounts", mode, "--strategy", strategy); err != nil {
		t.Fatalf("migration: %v\n%s", err, stderr)
	}
	at := lines(filepath.Join(landed, "log"))
	deadline := time.Now().Add(30 * time.Second)
	for lines(filepath.Join(landed, "log")) < at+10 {
		if time.Now().After(deadline) {
			t.Fatalf("the process on host2 stopped appending to %s/log (%d lines)", landed, lines(filepath.Join(landed, "log")))
		}
		time.Sleep(100 * time.Millisecond)
	}
	for file, want := range map[string]string{"/conf/sub/before": "from host1", "/conf/sub/late": "late"} {
		if out, err := e.h2.Docker(ctx, "exec", name, "cat", file); err != nil || out != want {
			t.Fatalf("%s on host2: %q, %v", file, out, err)
		}
	}
	mounts, err := e.h2.Docker(ctx, "inspect", "-f", `{{range .Mounts}}{{.Type}} {{.Source}} {{.Destination}}{{end}}`, name)
	if want := "bind " + landed + " /conf"; err != nil || mounts != want {
		t.Fatalf("mounts on host2 %q, want %q (%v)", mounts, want, err)
	}
	if mode == "copy" {
		if n := lines(filepath.Join(src, "log")); n == 0 || n >= lines(filepath.Join(landed, "log")) {
			t.Fatalf("host1's directory (%d lines) is not a copy behind host2's", n)
		}
	}
	left, _ := filepath.Glob(filepath.Join(src, ".dockmove-shared-*"))
	if len(left) > 0 {
		t.Fatalf("the shared-storage markers stayed: %v", left)
	}
	assertHost2Clean(t, ctx, e, name, false)
}
