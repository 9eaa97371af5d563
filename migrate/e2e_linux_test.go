package migrate_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/workload"
	"github.com/dockmove/dockmove/migrate"
)

// These tests migrate real containers between the lab's two dockerds with
// the real agents (separate processes, each in its host's network namespace,
// talking TLS over the lab switch), real CRIU and the installed restore
// runtime. `make test` brings the lab up first.

const (
	labTLS  = "/var/lib/dockmove-lab/tls"
	dstPort = "7070"
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
)

func setup(t *testing.T) env {
	t.Helper()
	h1, h2 := lab.Require(t)
	lab.RequireBinary(t, "criu")
	for _, h := range []lab.Host{h1, h2} {
		out, err := h.Docker(context.Background(), "info", "--format", "{{json .Runtimes}}")
		lab.SkipUnless(t, err == nil && strings.Contains(out, `"dockmove"`), h.Name+" has the dockmove runtime (run: make lab-up)")
	}
	_, err := os.Stat(filepath.Join(labTLS, "host2", "key.pem"))
	lab.SkipUnless(t, err == nil, "lab TLS credentials in "+labTLS+" (run: make lab-up)")
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "dockmove-e2e-")
		if buildErr != nil {
			return
		}
		root, err := lab.RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", buildDir+"/", "./cmd/migrate-src", "./cmd/migrate-dst")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build agents: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return env{h1: h1, h2: h2, bin: buildDir}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func unique(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// dst is a migrate-dst process on host2.
type dst struct {
	t    *testing.T
	e    env
	args []string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (e env) workDir(h lab.Host) string {
	return filepath.Join("/var/lib/dockmove-lab", h.Name, "work")
}
func (e env) runtimeState(h lab.Host) string { return filepath.Join(filepath.Dir(h.Config), "runtime") }

// startDst runs migrate-dst on host2 and waits until it listens.
func startDst(t *testing.T, e env, extra ...string) *dst {
	t.Helper()
	d := &dst{t: t, e: e, args: append([]string{
		"--listen", net.JoinHostPort(e.h2.Addr, dstPort),
		"--docker-host", e.h2.DockerHost,
		"--work-dir", e.workDir(e.h2),
		"--runtime-state", e.runtimeState(e.h2),
		"--tls-dir", filepath.Join(labTLS, "host2"),
	}, extra...)}
	d.start()
	t.Cleanup(d.stop)
	return d
}

func (d *dst) start() {
	d.t.Helper()
	d.log = &syncBuffer{}
	d.cmd = d.e.h2.Command(context.Background(), filepath.Join(d.e.bin, "migrate-dst"), d.args...)
	pr, pw := io.Pipe()
	d.cmd.Stderr = pw
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.done = make(chan struct{})
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			fmt.Fprintln(d.log, sc.Text())
			if strings.Contains(sc.Text(), "msg=listening") {
				once.Do(func() { close(listening) })
			}
		}
	}()
	go func() { d.cmd.Wait(); pw.Close(); close(d.done) }()
	select {
	case <-listening:
	case <-d.done:
		d.t.Fatalf("migrate-dst exited: %s", d.log)
	case <-time.After(30 * time.Second):
		d.t.Fatalf("migrate-dst did not listen: %s", d.log)
	}
}

func (d *dst) kill() {
	d.cmd.Process.Kill()
	<-d.done
}

func (d *dst) stop() {
	d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		d.kill()
	}
	if d.t.Failed() {
		d.t.Logf("migrate-dst log:\n%s", d.log)
	}
}

// src runs migrate-src on host1 for container name and returns its report,
// its stderr and its error. onLine, if set, sees each stderr line as it
// comes (the stage lines among them), with a function that kills migrate-src.
func runSrc(ctx context.Context, e env, name string, onLine func(line string, kill func()), extra ...string) (*migrate.Report, string, error) {
	args := append([]string{
		"--to", net.JoinHostPort(e.h2.Addr, dstPort),
		"--docker-host", e.h1.DockerHost,
		"--work-dir", e.workDir(e.h1),
		"--tls-dir", filepath.Join(labTLS, "host1"),
		"--json"}, extra...)
	if !strings.Contains(strings.Join(extra, " "), "--strategy") {
		args = append(args, "--strategy", "stop-and-copy")
	}
	cmd := e.h1.Command(ctx, filepath.Join(e.bin, "migrate-src"), append(args, name)...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	var stderr strings.Builder
	lines := make(chan struct{})
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			stderr.WriteString(sc.Text() + "\n")
			if onLine != nil {
				onLine(sc.Text(), func() { cmd.Process.Kill() })
			}
		}
	}()
	err := cmd.Run()
	pw.Close()
	<-lines
	var r migrate.Report
	if jerr := json.Unmarshal(stdout.Bytes(), &r); jerr != nil && err == nil {
		err = fmt.Errorf("report: %v: %s", jerr, stdout.String())
	}
	return &r, stderr.String(), err
}

// runWorkload starts the workload container on host1 and returns its
// heartbeat address.
func runWorkload(t *testing.T, ctx context.Context, e env, name string, image string, args ...string) string {
	t.Helper()
	return runWorkloadMiB(t, ctx, e, name, image, 64, args...)
}

// runWorkloadMiB is runWorkload holding mib MiB.
func runWorkloadMiB(t *testing.T, ctx context.Context, e env, name string, image string, mib int, args ...string) string {
	t.Helper()
	argv := append([]string{"run", "-d", "--pull", "never", "--name", name, "--network", e.h1.Network}, args...)
	argv = append(argv, image, "/usr/local/bin/workload", "--data-dir", "/data", "--mem-mib", fmt.Sprint(mib), "--dirty-pages-per-sec", "500", "--verify-every", "1s")
	if _, err := e.h1.Docker(ctx, argv...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, h := range []lab.Host{e.h1, e.h2} {
			h.Docker(context.Background(), "rm", "-f", name)
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
