package migrate_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/lab/labtest"
	"github.com/dockmove/dockmove/internal/reserve"
	"github.com/dockmove/dockmove/internal/workload"
	"github.com/dockmove/dockmove/migrate"
)

// These tests migrate real containers between the lab's two dockerds with
// the real agents (separate processes, each in its host's network namespace,
// talking TLS over the lab switch), real CRIU and the installed restore
// runtime. `make test` brings the lab up first.

const (
	labTLS  = lab.TLSDir
	dstPort = lab.AgentPort
)

// env is the lab plus the agent binaries built from this tree.
type env struct {
	h1, h2 lab.Host
	bin    string
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error

	started = time.Now()
	swept   sync.Map // lab host name -> struct{}: leftovers removed
)

// testName matches the names unique gives the tests' containers.
var testName = regexp.MustCompile(`^[a-z0-9-]+-[0-9a-f]{8}$`)

// sweepLeftovers removes, once per host and run, the containers an earlier
// run of these tests left on h (a run killed before its cleanups): one
// with a restart policy comes back with every lab-up and would run
// through this run, taking CPU and holding its address.
func sweepLeftovers(t *testing.T, h lab.Host) {
	if _, done := swept.LoadOrStore(h.Name, struct{}{}); done {
		return
	}
	out, err := cleanupDocker(h, "ps", "-a", "--format", "{{.ID}} {{.Names}} {{.CreatedAt}}")
	if err != nil {
		t.Logf("%s: listing containers: %v", h.Name, err)
		return
	}
	var ids, names []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || !testName.MatchString(f[1]) {
			continue
		}
		// "2006-01-02 15:04:05 -0700 MST"
		created, err := time.Parse("2006-01-02 15:04:05 -0700", f[2]+" "+f[3]+" "+f[4])
		if err != nil || !created.Before(started) {
			continue
		}
		ids, names = append(ids, f[0]), append(names, f[1])
	}
	if len(ids) == 0 {
		return
	}
	t.Logf("%s: removing containers an earlier test run left: %s", h.Name, strings.Join(names, ", "))
	if _, err := cleanupDocker(h, append([]string{"rm", "-f"}, ids...)...); err != nil {
		t.Logf("%s: %v", h.Name, err)
	}
}

func setup(t *testing.T) env {
	t.Helper()
	src, dst := "host1", "host2"
	if pair := os.Getenv(labPairEnv); pair != "" {
		src, dst, _ = strings.Cut(pair, ",")
	}
	return setupHosts(t, src, dst)
}

// labPairEnv names the lab hosts the tests migrate between ("host3,host4"
// runs them on Docker 28; the VM tier uses it); default host1 -> host2.
const labPairEnv = "DOCKMOVE_LAB_PAIR"

// setupHosts is setup with migrations from lab host src to lab host dst.
func setupHosts(t *testing.T, src, dst string) env {
	t.Helper()
	hosts := labtest.RequireHosts(t, src, dst)
	h1, h2 := hosts[0], hosts[1]
	labtest.RequireBinary(t, "criu")
	for _, h := range []lab.Host{h1, h2} {
		out, err := h.Docker(context.Background(), "info", "--format", "{{json .Runtimes}}")
		labtest.SkipUnless(t, err == nil && strings.Contains(out, `"dockmove"`), h.Name+" has the dockmove runtime (run: make lab-up)")
	}
	_, err := os.Stat(filepath.Join(labTLS, dst, "key.pem"))
	labtest.SkipUnless(t, err == nil, "lab TLS credentials in "+labTLS+" (run: make lab-up)")
	sweepLeftovers(t, h1)
	sweepLeftovers(t, h2)
	buildOnce.Do(func() {
		if dir := os.Getenv("DOCKMOVE_BIN"); dir != "" {
			// Prebuilt (the VM tier has no Go toolchain).
			buildDir = dir
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "dockmove-e2e-")
		if buildErr != nil {
			return
		}
		root, err := lab.RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", buildDir+"/", "./cmd/migrate-src", "./cmd/migrate-dst", "./cmd/workload")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build agents: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	e := env{h1: h1, h2: h2, bin: buildDir}
	t.Cleanup(func() { removeReservations(e) })
	return e
}

// removeReservations removes the reservations on both hosts: a container
// that moved away leaves its address reserved on its home host (package
// reserve), and the tests' containers go for good (a test of many
// migrations calls it as it goes, or the home's range fills up).
func removeReservations(e env) {
	for _, h := range []lab.Host{e.h1, e.h2} {
		if ids, _ := cleanupDocker(h, "ps", "-aq", "--filter", "label="+reserve.Label); ids != "" {
			cleanupDocker(h, append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// cleanupDocker runs a docker command at the end of a test, bounded: a
// daemon stuck on one container must not hang the run past its logs.
func cleanupDocker(h lab.Host, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	return h.Docker(ctx, args...)
}

func unique(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// startDst runs migrate-dst on host2 for the test; it is stopped (and its
// log shown if the test failed) at the end.
func startDst(t *testing.T, e env, extra ...string) *lab.Destination {
	t.Helper()
	d, err := lab.StartDestination(e.h2, e.bin, extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			t.Logf("migrate-dst log:\n%s", d.Log())
		}
	})
	return d
}

// runSrc runs migrate-src on host1 for container name (stop-and-copy unless
// extra names a strategy) and returns its report, its stderr and its error.
// onStage, if set, sees each stage of migrate-src's event stream.
func runSrc(ctx context.Context, e env, name string, onStage func(stage string, kill func()), extra ...string) (*migrate.Report, string, error) {
	if !strings.Contains(strings.Join(extra, " "), "--strategy") {
		extra = append(extra, "--strategy", "stop-and-copy")
	}
	run := lab.RunSource(ctx, e.h1, e.h2, e.bin, name, onStage, extra...)
	var r migrate.Report
	err := run.Err
	if jerr := json.Unmarshal(run.Report, &r); jerr != nil && err == nil {
		err = fmt.Errorf("report: %v: %s", jerr, run.Report)
	}
	return &r, run.Stderr, err
}

// atStage returns an onStage callback that runs act once, when
// migrate-src enters stage, and a function that reports whether it did.
func atStage(stage string, act func(kill func())) (onStage func(string, func()), did func() bool) {
	var done bool
	return func(s string, kill func()) {
		if s == stage && !done {
			done = true
			act(kill)
		}
	}, func() bool { return done }
}

// waitGoneFromHost2 waits until host2 no longer holds a container called
// name, as after a failed migration it must remove it by itself.
func waitGoneFromHost2(t *testing.T, ctx context.Context, e env, name string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		out, _ := e.h2.Docker(ctx, "ps", "-aq", "--filter", "name=^/"+name+"$")
		if out == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("host2 still holds %s after %v", name, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runIdle starts on host1 a busybox container called name that only
// sleeps (args go before the image: network, labels, volumes), removed
// from both hosts when the test ends.
func runIdle(t *testing.T, ctx context.Context, e env, name string, args ...string) {
	t.Helper()
	runIdleCmd(t, ctx, e, name, args, "while sleep 1; do :; done")
}

// runIdleCmd is runIdle running the shell script script.
func runIdleCmd(t *testing.T, ctx context.Context, e env, name string, args []string, script string) {
	t.Helper()
	argv := append([]string{"run", "-d", "--pull", "never", "--name", name}, args...)
	argv = append(argv, lab.BusyboxImage, "sh", "-c", script)
	if _, err := e.h1.Docker(ctx, argv...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, h := range []lab.Host{e.h1, e.h2} {
			cleanupDocker(h, "rm", "-f", name)
		}
	})
}

// runWorkload starts the workload container on host1 and returns its
// heartbeat address.
func runWorkload(t *testing.T, ctx context.Context, e env, name string, image string, args ...string) string {
	t.Helper()
	return runWorkloadMiB(t, ctx, e, name, image, 64, 500, args...)
}

// runWorkloadMiB is runWorkload holding mib MiB and dirtying dirty pages
// per second.
func runWorkloadMiB(t *testing.T, ctx context.Context, e env, name string, image string, mib, dirty int, args ...string) string {
	t.Helper()
	return runWorkloadWith(t, ctx, e, name, image, mib, dirty, args, nil)
}

// runWorkloadWith is runWorkloadMiB with arguments for Docker (dockerArgs)
// and for the workload (workloadArgs).
func runWorkloadWith(t *testing.T, ctx context.Context, e env, name string, image string, mib, dirty int, dockerArgs, workloadArgs []string) string {
	t.Helper()
	cmd := []string{"/usr/local/bin/workload", "--data-dir", "/data", "--mem-mib", fmt.Sprint(mib), "--dirty-pages-per-sec", fmt.Sprint(dirty), "--verify-every", "1s"}
	return startContainer(t, ctx, e, name, dockerArgs, image, append(cmd, workloadArgs...)...)
}

// startContainer runs container name from image on host1 with cmd, which
// starts a workload that answers on its port, and returns that address.
func startContainer(t *testing.T, ctx context.Context, e env, name string, dockerArgs []string, image string, cmd ...string) string {
	t.Helper()
	argv := append([]string{"run", "-d", "--pull", "never", "--name", name, "--network", e.h1.Network}, dockerArgs...)
	argv = append(append(argv, image), cmd...)
	if _, err := e.h1.Docker(ctx, argv...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, h := range []lab.Host{e.h1, e.h2} {
			cleanupDocker(h, "rm", "-f", name)
		}
	})
	ip, err := e.h1.Docker(ctx, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+e.h1.Network+"\").IPAddress}}", name)
	if err != nil {
		t.Fatal(err)
	}
	// The address may have lived on host2's switch port in an earlier test;
	// the new container announces itself, as a migrated one does.
	if _, err := e.h1.Docker(ctx, "exec", name, "arping", "-U", "-c", "1", "-I", "eth0", ip); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(ip, fmt.Sprint(lab.WorkloadPort))
	waitBeat(t, ctx, addr, 20)
	return addr
}

// watchBeats holds a heartbeat stream to the workload at addr once n beats
// have arrived; the caller stops it.
func watchBeats(t *testing.T, ctx context.Context, addr string, n int) *workload.Watcher {
	t.Helper()
	watch, err := workload.Watch(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.WaitBeats(ctx, n); err != nil {
		t.Fatal(err)
	}
	return watch
}

// waitBeat waits until the workload answers with a counter of at least min.
func waitBeat(t *testing.T, ctx context.Context, addr string, min uint64) workload.Beat {
	t.Helper()
	for {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		b, err := workload.Query(qctx, addr, workload.CmdStatus)
		cancel()
		if err == nil && b.Counter >= min {
			return b
		}
		select {
		case <-ctx.Done():
			t.Fatalf("workload at %s: %v (last %+v)", addr, err, b)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func identity(t *testing.T, ctx context.Context, h lab.Host, name string) string {
	t.Helper()
	out, err := h.Docker(ctx, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+h.Network+"\").IPAddress}} {{(index .NetworkSettings.Networks \""+h.Network+"\").MacAddress}}", name)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
