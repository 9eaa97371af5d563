package migrate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/install"
	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/restoreruntime"
)

// TestInstallOnLabHost: `migrate-dst install` makes host2 a destination
// as an operator would, with host2's own daemon.json and dockerd (its
// other files below a temporary --root); migrate-dst then runs from
// nothing but the config file install wrote, as its unit would run it; a
// container moves to host2; and `migrate-dst uninstall` leaves host2 as
// it was: daemon.json byte for byte, the runtime dockerd lists as before,
// no file of install's left.
//
// install registers this tree's dockmove-runtime (not the lab's), so
// daemon.json really changes and the migration restores through the
// runtime install registered.
func TestInstallOnLabHost(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 4*time.Minute)
	bin := installBinDir(t, e)
	root := t.TempDir()
	daemonBefore, modeBefore := readDaemonJSON(t, e.h2)
	runtimesBefore := dockerRuntimes(t, ctx, e.h2)
	t.Cleanup(func() { restoreDaemonJSON(t, e.h2, daemonBefore, modeBefore) })

	ka, dp := lab.PeerTimeouts()
	res := runInstall(t, ctx, bin, "install", "--root", root, "--daemon-json", e.h2.Config, "--dockerd-pidfile", e.h2.PIDFile,
		"--listen", net.JoinHostPort(e.h2.Addr, lab.AgentPort), "--docker-host", e.h2.DockerHost,
		"--work-dir", e.h2.WorkDir(), "--runtime-state", e.h2.RuntimeState(), "--tls-dir", filepath.Join(lab.TLSDir, e.h2.Name),
		"--allow-source", e.h1.Name, "--keepalive", ka.String(), "--dead-peer-timeout", dp.String())
	if !res.DockerdReloaded || action(res, e.h2.Config) != install.Updated {
		t.Fatalf("install: %+v", res)
	}
	if got := dockerRuntimes(t, ctx, e.h2)[restoreruntime.Name]; !strings.Contains(got, filepath.Join(bin, "dockmove-runtime")) {
		t.Fatalf("dockerd's %s runtime after install: %s", restoreruntime.Name, got)
	}
	if again := runInstall(t, ctx, bin, "install", "--root", root, "--daemon-json", e.h2.Config, "--dockerd-pidfile", e.h2.PIDFile); again.Changed() {
		t.Fatalf("a second install (no settings: the config file kept) changed %+v", again.Changes)
	}

	conf := filepath.Join(root, "etc/dockmove/migrate-dst.conf")
	d, err := lab.StartDestinationConfig(e.h2, bin, conf)
	if err != nil {
		t.Fatal(err)
	}
	name := unique("installed")
	runIdle(t, ctx, e, name, "--network", e.h1.Network)
	_, stderr, err := runSrc(ctx, e, name, nil)
	d.Stop()
	if err != nil {
		t.Fatalf("migration to the installed migrate-dst: %v\n%s\nmigrate-dst:\n%s", err, stderr, d.Log())
	}
	if st, err := e.h2.Docker(ctx, "inspect", "-f", "{{.State.Status}} {{.HostConfig.Runtime}}", name); err != nil || st != "running "+restoreruntime.Name {
		t.Fatalf("on host2: %q, %v", st, err)
	}
	// A container created with the runtime keeps uninstall from
	// unregistering it: it goes first.
	if _, err := e.h2.Docker(ctx, "rm", "-f", name); err != nil {
		t.Fatal(err)
	}

	res = runInstall(t, ctx, bin, "uninstall", "--root", root, "--dockerd-pidfile", e.h2.PIDFile)
	if !res.DockerdReloaded || action(res, e.h2.Config) != install.Restored {
		t.Fatalf("uninstall: %+v", res)
	}
	if data, mode := readDaemonJSON(t, e.h2); !bytes.Equal(data, daemonBefore) || mode != modeBefore {
		t.Fatalf("daemon.json after uninstall (mode %v, was %v):\n%s\nwas\n%s", mode, modeBefore, data, daemonBefore)
	}
	awaitRuntimes(t, ctx, e.h2, runtimesBefore)
	if left, _ := os.ReadDir(root); len(left) > 0 {
		t.Fatalf("uninstall left %v in %s", left, root)
	}
	if temps, _ := filepath.Glob(filepath.Join(filepath.Dir(e.h2.Config), ".*dockmove*")); len(temps) > 0 {
		t.Fatalf("temporary files left beside daemon.json: %v", temps)
	}
	if res := runInstall(t, ctx, bin, "uninstall", "--root", root); !res.NothingInstalled {
		t.Fatalf("a second uninstall: %+v", res)
	}
}

// installBinDir returns a directory with this tree's migrate-dst and
// dockmove-runtime, beside host2's daemon.json: a modern host's dockerd
// sees its own root and the lab's directories only.
func installBinDir(t *testing.T, e env) string {
	t.Helper()
	dir, err := os.MkdirTemp(filepath.Dir(e.h2.Config), "install-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data, err := os.ReadFile(filepath.Join(e.bin, "migrate-dst"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "migrate-dst"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	if prebuilt := filepath.Join(e.bin, "dockmove-runtime"); fileExists(prebuilt) {
		data, err := os.ReadFile(prebuilt)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "dockmove-runtime"), data, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
		return dir
	}
	repo, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "dockmove-runtime"), "./cmd/dockmove-runtime")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build dockmove-runtime: %v\n%s", err, out)
	}
	return dir
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// runInstall runs migrate-dst install or uninstall with --json and
// returns its report.
func runInstall(t *testing.T, ctx context.Context, bin string, args ...string) install.Result {
	t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "migrate-dst"), append(args, "--json")...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("migrate-dst %s: %v\n%s%s", args[0], err, out, stderr.String())
	}
	var res install.Result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("migrate-dst %s's report: %v\n%s", args[0], err, out)
	}
	return res
}

func action(res install.Result, path string) install.Action {
	for _, c := range res.Changes {
		if c.Path == path {
			return c.Action
		}
	}
	return -1
}

func readDaemonJSON(t *testing.T, h lab.Host) ([]byte, os.FileMode) {
	t.Helper()
	st, err := os.Stat(h.Config)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(h.Config)
	if err != nil {
		t.Fatal(err)
	}
	return data, st.Mode()
}

// restoreDaemonJSON puts back h's daemon.json if a failed test left it
// changed, and reloads h's dockerd: the lab must not keep a runtime in a
// removed directory.
func restoreDaemonJSON(t *testing.T, h lab.Host, data []byte, mode os.FileMode) {
	if cur, err := os.ReadFile(h.Config); err == nil && bytes.Equal(cur, data) {
		return
	}
	if err := os.WriteFile(h.Config, data, mode.Perm()); err != nil {
		t.Errorf("restore %s: %v", h.Config, err)
		return
	}
	if err := restoreruntime.Reload(h.PIDFile); err != nil {
		t.Errorf("reload %s's dockerd: %v", h.Name, err)
	}
}

// dockerRuntimes returns the runtimes h's dockerd lists, each as JSON.
func dockerRuntimes(t *testing.T, ctx context.Context, h lab.Host) map[string]string {
	t.Helper()
	out, err := h.Docker(ctx, "info", "--format", "{{json .Runtimes}}")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("docker info: %v: %s", err, out)
	}
	rts := map[string]string{}
	for k, v := range raw {
		rts[k] = string(v)
	}
	return rts
}

// awaitRuntimes waits until h's dockerd, reloaded, lists want again.
func awaitRuntimes(t *testing.T, ctx context.Context, h lab.Host, want map[string]string) {
	t.Helper()
	for {
		got := dockerRuntimes(t, ctx, h)
		// Docker 20.10 lists its built-in aliases (io.containerd.*) only
		// until its first reload: a runtime uninstall left, or one it
		// dropped, is what counts.
		same := got[restoreruntime.Name] == want[restoreruntime.Name]
		for k, v := range got {
			if want[k] != v {
				same = false
			}
		}
		if same {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s's runtimes after uninstall: %v, want %v", h.Name, got, want)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
