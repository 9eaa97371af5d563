package migrate_test

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
)

// TestCgroupVersionsRefusedAcrossKernels moves containers between hosts
// whose cgroup versions differ, on two real kernels: this machine's (cgroup
// v1: host1 with Docker 20.10, host3 with Docker 28) and the VM tier's
// guest (the unified cgroup v2 hierarchy: host5 with Docker 28), whose lab
// switch is bridged to this machine's through a tap (scripts/vm.sh,
// VM_CROSS; the guest's side is scripts/vm-cross.sh). CRIU restores a
// container's cgroups into the hierarchy it dumped them from, so every
// such move is refused before anything is frozen (no pre-copy or dump
// stage), with both hosts' versions named: host5 -> host3 (the way
// out), host1 -> host5 by stop-and-copy and host3 -> host5 by lazy (the way
// in). Each original keeps running (the way in's with its memory
// verified, the way out's with the same process), and neither
// destination keeps a container, staged files or runtime state.
func TestCgroupVersionsRefusedAcrossKernels(t *testing.T) {
	e := setupHosts(t, "host1", "host3")
	ctx := ctxFor(t, 10*time.Minute)
	guest, err := lab.Load(ctx, "host5")
	if err != nil {
		t.Fatal(err)
	}
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// The agents' default keepalives with the guest: its emulated CPUs can
	// hold a ping back for seconds.
	t.Setenv("DOCKMOVE_LAB_PEER_TIMEOUTS", "5s,10s")
	startDst(t, e) // host3 serves the way out

	vm := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "vm.sh"))
	vm.Dir = root
	vm.Cancel = func() error { return vm.Process.Signal(syscall.SIGTERM) }
	vm.WaitDelay = time.Minute
	vm.Env = append(vm.Environ(), "VM_CROSS="+net.JoinHostPort(e.h2.Addr, lab.AgentPort),
		"VM_MODERN=1", "VM_CGROUP=2", "VM_OUT=/tmp/dockmove-vm-cross", "VM_TIMEOUT=540")
	out, err := vm.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var vmLog strings.Builder
	var logMu sync.Mutex
	vm.Stderr = writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return vmLog.Write(p)
	})
	if err := vm.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 256)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := strings.TrimRight(sc.Text(), "\r")
			logMu.Lock()
			fmt.Fprintln(&vmLog, line)
			logMu.Unlock()
			if rest, ok := strings.CutPrefix(line, "VMTEST-CROSS "); ok {
				lines <- rest
			}
		}
	}()
	t.Cleanup(func() {
		if vm.ProcessState == nil { // the test stopped early: vm.sh stops its guest on SIGTERM
			vm.Process.Signal(syscall.SIGTERM)
			go func() {
				for range lines {
				}
			}()
			vm.Wait()
		}
		if t.Failed() {
			logMu.Lock()
			t.Logf("vm.sh:\n%s", vmLog.String())
			logMu.Unlock()
		}
	})
	// until reads the guest's findings up to the one starting with last.
	var said []string
	until := func(last string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the guest stopped before %q; it said:\n%s", last, strings.Join(said, "\n"))
				}
				said = append(said, l)
				if strings.HasPrefix(l, "failed:") {
					t.Fatalf("guest: %s", l)
				}
				if strings.HasPrefix(l, last) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %q from the guest in time; it said:\n%s", last, strings.Join(said, "\n"))
			}
		}
	}
	saying := func(prefix string) []string {
		var got []string
		for _, l := range said {
			if s, ok := strings.CutPrefix(l, prefix); ok {
				got = append(got, s)
			}
		}
		return got
	}

	// The way out: host5 (v2) -> host3 (v1), run by the guest.
	until("in ready")
	if got := saying("host5 up: cgroup "); len(got) != 1 || !strings.HasPrefix(got[0], "v2,") {
		t.Fatalf("the guest's host5 does not run cgroup v2: %q", got)
	}
	if got := saying("out exit "); len(got) != 1 || got[0] == "0" {
		t.Fatalf("host5 -> host3: migrate-src exited %q, want a refusal", got)
	}
	refusal := "moving a container between cgroup versions is not supported"
	stderr := strings.Join(saying("out stderr: "), "\n")
	for _, want := range []string{refusal, "the source runs cgroup v2", "the destination cgroup v1"} {
		if !strings.Contains(stderr, want) {
			t.Fatalf("host5 -> host3: migrate-src did not say %q:\n%s", want, stderr)
		}
	}
	if got := saying("out stages "); len(got) != 1 || frozen(strings.Fields(got[0])) {
		t.Fatalf("host5 -> host3 went past the preflight: stages %q", got)
	}
	if got := saying("out state "); len(got) != 1 || got[0] != "running paused=false" || len(saying("out restarted: ")) != 0 {
		t.Fatalf("host5's original after the refusal: %q %q", got, saying("out restarted: "))
	}
	assertHost2Clean(t, ctx, e, "cross-out", true)

	// The way in: host1 (v1, Docker 20.10) and host3 (v1, Docker 28) ->
	// host5 (v2, Docker 28).
	for _, way := range []struct {
		src      lab.Host
		strategy string
	}{{e.h1, "stop-and-copy"}, {e.h2, "lazy"}} {
		src := way.src
		in := env{h1: src, h2: guest, bin: e.bin}
		name := unique("cross-in")
		addr := runWorkload(t, ctx, in, name, lab.WorkloadImage)
		before := waitBeat(t, ctx, addr, 0)
		var stages []string
		_, stderr, err := runSrc(ctx, in, name, func(stage string, _ func()) { stages = append(stages, stage) }, "--strategy", way.strategy)
		if frozen(stages) {
			t.Fatalf("%s -> host5 went past the preflight: stages %q", src.Name, stages)
		}
		failedMigration(t, ctx, in, name, addr, before, err, stderr, refusal)
		for _, want := range []string{"the source runs cgroup v1", "the destination cgroup v2"} {
			if !strings.Contains(stderr, want) {
				t.Fatalf("%s -> host5: migrate-src did not say %q:\n%s", src.Name, want, stderr)
			}
		}
		cleanupDocker(src, "rm", "-f", name)
	}

	// Done: the guest says what host5 holds, and powers off.
	conn, err := e.h1.Dial(ctx, "tcp", net.JoinHostPort(guest.Addr, "7071"))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	until("done")
	if got := saying("left on host5: "); len(got) != 1 || strings.TrimSpace(got[0]) != "cross-out" {
		t.Fatalf("host5 holds %q after the refused moves, want only its own cross-out", got)
	}
	if got := saying("left in host5's dirs: "); len(got) != 1 || strings.TrimSpace(got[0]) != "" {
		t.Fatalf("host5 keeps %q in its work and runtime directories after the refused moves", got)
	}
	if got := strings.Join(saying("in log: "), "\n"); !strings.Contains(got, refusal) {
		t.Errorf("host5's migrate-dst does not name its refusal:\n%s", got)
	}
	for range lines { // to the end of vm.sh's output
	}
	if err := vm.Wait(); err != nil {
		t.Fatalf("vm.sh: %v", err)
	}
}

// frozen reports whether a migration's stages reached CRIU's work on the
// container: pre-copy rounds, the dump, or anything after it.
func frozen(stages []string) bool {
	for _, s := range stages {
		switch s {
		case "pre-copy", "dump", "transfer", "pages", "post-copy", "restore", "commit":
			return true
		}
	}
	return false
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
