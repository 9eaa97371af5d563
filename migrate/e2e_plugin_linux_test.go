package migrate_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
)

// TestDockerPluginMovesWithTheCurrentContext: `migrate-src install-plugin`
// makes `docker migrate` work in the real Docker CLI, which picks host1's
// daemon from its current context (no DOCKER_HOST, no --docker-host): the
// container moves to host2.
func TestDockerPluginMovesWithTheCurrentContext(t *testing.T) {
	e := setup(t)
	startDst(t, e)
	ctx := ctxFor(t, 2*time.Minute)
	name := unique("plugin")
	runIdle(t, ctx, e, name, "--network", e.h1.Network)
	cfg := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DOCKER_HOST=") && !strings.HasPrefix(kv, "DOCKER_CONTEXT=") && !strings.HasPrefix(kv, "DOCKER_CONFIG=") {
			env = append(env, kv)
		}
	}
	cli := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + e.h1.Netns, "docker", "--config", cfg}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := exec.CommandContext(ctx, filepath.Join(e.bin, "migrate-src"), "install-plugin", "--docker-config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("install-plugin: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"context", "create", "lab-host1", "--docker", "host=" + e.h1.DockerHost}, {"context", "use", "lab-host1"}} {
		if out, err := cli(args...); err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if out, err := cli("--help"); err != nil || !strings.Contains(out, "migrate*") {
		t.Fatalf("the Docker CLI does not list the plugin: %v\n%s", err, out)
	}
	out, err := cli("migrate", name, "--to", net.JoinHostPort(e.h2.Addr, lab.AgentPort),
		"--work-dir", e.h1.WorkDir(), "--tls-dir", filepath.Join(lab.TLSDir, e.h1.Name), "--strategy", "stop-and-copy")
	if err != nil {
		t.Fatalf("docker migrate: %v\n%s", err, out)
	}
	if st, err := e.h2.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name); err != nil || st != "running" {
		t.Fatalf("on host2 after docker migrate: %q, %v\n%s", st, err, out)
	}
	if _, err := e.h1.Docker(ctx, "inspect", name); err == nil {
		t.Fatal("docker migrate left the container on host1")
	}
}
