//go:build linux && vmtest

// These tests run inside the VM tier (make test-vm, scripts/vm.sh): a
// kernel with soft-dirty page tracking, which this project's hosts lack.
// They drive the real migrate-src and migrate-dst over TLS on loopback and
// move a workload process tree (--pid) by pre-copy and by hybrid.
package predump_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/workload"
	"github.com/dockmove/dockmove/migrate"
	"github.com/dockmove/dockmove/predump"
)

const (
	memMiB = 32
	pages  = memMiB << 20 / 4096
	addr   = "127.0.0.1:7070"
)

var bin = envOr("DOCKMOVE_BIN", "/bin")

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func TestMain(m *testing.M) {
	dst, err := startDestination()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vm test setup:", err)
		os.Exit(1)
	}
	code := m.Run()
	dst.Process.Signal(syscall.SIGTERM)
	dst.Wait()
	os.Exit(code)
}

// startDestination makes TLS credentials for both agents and runs
// migrate-dst, accepting processes (there is no Docker in the VM).
func startDestination() (*exec.Cmd, error) {
	out, err := exec.Command(filepath.Join(bin, "migrate-dst"), "certs", "--out", "/tmp/tls",
		"--host", "src=127.0.0.1", "--host", "dst=127.0.0.1").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("certs: %v: %s", err, out)
	}
	cmd := exec.Command(filepath.Join(bin, "migrate-dst"), "--listen", addr, "--allow-processes",
		"--work-dir", "/tmp/dst", "--tls-dir", "/tmp/tls/dst", "--docker-host", "unix:///nonexistent.sock")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	for i := 0; i < 300; i++ {
		if out, _ := os.ReadFile("/proc/net/tcp"); bytes.Contains(out, []byte(":1B9E 00000000:0000 0A")) {
			return cmd, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Kill()
	return nil, fmt.Errorf("migrate-dst did not listen on %s", addr)
}

// proc is a workload process tree: the init of its own PID namespace, in
// its own session, stdio on /dev/null, queried through its status file.
type proc struct {
	cmd    *exec.Cmd
	status string
	exited chan error
}

func startWorkload(t *testing.T, name string, dirty int) *proc {
	t.Helper()
	p := &proc{status: filepath.Join("/tmp", name+".status"), exited: make(chan error, 1)}
	p.cmd = exec.Command(filepath.Join(bin, "workload"), "--mem-mib", fmt.Sprint(memMiB),
		"--dirty-pages-per-sec", fmt.Sprint(dirty), "--verify-every", "0", "--listen", "", "--status-file", p.status)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Setsid: true}
	// Its output goes to a file, which exists on the destination (the
	// same machine) as CRIU requires.
	logf, err := os.Create(filepath.Join("/tmp", name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := os.ReadFile(logf.Name())
			t.Logf("workload output:\n%s", out)
		}
	})
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() { p.cmd.Process.Kill() })
	if b := query(t, p.cmd.Process.Pid, p.status); b.Bad != 0 || b.Pages != pages {
		t.Fatalf("workload before migration: %+v", b)
	}
	return p
}

// query has the process at pid verify its memory and report.
func query(t *testing.T, pid int, status string) workload.Beat {
	t.Helper()
	os.Remove(status)
	deadline := time.Now().Add(time.Minute)
	for i := 0; time.Now().Before(deadline); i++ {
		// Resent: a PID namespace's init ignores signals it has no
		// handler for yet.
		if i%100 == 0 {
			if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
				t.Fatalf("signal %d: %v", pid, err)
			}
		}
		if b, err := os.ReadFile(status); err == nil {
			beat, err := workload.ParseBeat(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			return beat
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	t.Fatalf("process %d wrote no status; /proc status:\n%s", pid, st)
	return workload.Beat{}
}

func migrateSrc(t *testing.T, pid int, args ...string) *migrate.Report {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "migrate-src"), append([]string{"--to", addr, "--tls-dir", "/tmp/tls/src",
		"--work-dir", "/tmp/src", "--json", "--docker-host", "unix:///nonexistent.sock", "--pid", fmt.Sprint(pid)}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("migrate-src %s:\n%s", strings.Join(args, " "), stderr.String())
	if err != nil {
		t.Fatalf("migrate-src: %v", err)
	}
	var rep migrate.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("report: %v: %s", err, stdout.String())
	}
	return &rep
}

// migrated checks what every pre-copy migration must show: rounds that
// shrink, the original gone, the copy running with its memory intact and
// its counter carried on.
func migrated(t *testing.T, p *proc, before workload.Beat, rep *migrate.Report, policy predump.Policy) {
	t.Helper()
	pc := rep.PreCopy
	if pc == nil || len(pc.Rounds) < 2 {
		t.Fatalf("want at least 2 pre-copy rounds, got %+v", pc)
	}
	r1, r2 := pc.Rounds[0], pc.Rounds[1]
	t.Logf("policy %s: %d rounds; round 1 wrote %d pages, round 2 %d (skipped %d); final dump wrote %d, lazy %d; post-copy %d bytes; freeze %s",
		policy, len(pc.Rounds), r1.PagesWritten, r2.PagesWritten, r2.PagesSkipped, rep.Dump.PagesWritten, rep.Dump.PagesLazy, rep.PageBytes, rep.FreezeTime)
	if r1.PagesWritten < pages*9/10 {
		t.Errorf("round 1 wrote %d pages, want about all %d", r1.PagesWritten, pages)
	}
	// Besides the workload's few pages, the Go runtime dirties about one
	// transparent huge page (512 pages) of its heap per round.
	if r2.PagesWritten*4 > r1.PagesWritten {
		t.Errorf("round 2 wrote %d pages, want far fewer than round 1's %d", r2.PagesWritten, r1.PagesWritten)
	}
	// The final dump carries only what changed since the last round: about
	// what a round writes, far from all memory.
	last := pc.Rounds[len(pc.Rounds)-1]
	if final := rep.Dump.PagesWritten + rep.Dump.PagesLazy; final*5 > pages || final > 2*last.PagesWritten+256 {
		t.Errorf("final dump wrote %d and left %d lazy pages; the last round wrote %d, memory is %d pages",
			rep.Dump.PagesWritten, rep.Dump.PagesLazy, last.PagesWritten, pages)
	}
	// The policy stops exactly where Decide says, on the measured rounds
	// and the limits the source used.
	if rep.PrecopyLimits == nil {
		t.Fatal("the report lacks the pre-copy limits")
	}
	lim := *rep.PrecopyLimits
	for k := 1; k <= len(pc.Rounds); k++ {
		d, err := predump.Decide(policy, lim, pc.Rounds[:k])
		if err != nil {
			t.Fatal(err)
		}
		if d.Stop != (k == len(pc.Rounds)) {
			t.Errorf("after round %d Decide says stop=%v (%s), but the migration took %d rounds", k, d.Stop, d.Reason, len(pc.Rounds))
		}
	}
	select {
	case err := <-p.exited:
		t.Logf("original exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the original still runs after the migration")
	}
	if rep.Pid <= 0 || rep.Pid == p.cmd.Process.Pid {
		t.Fatalf("destination PID %d", rep.Pid)
	}
	defer syscall.Kill(rep.Pid, syscall.SIGKILL)
	after := query(t, rep.Pid, p.status)
	if after.Bad != 0 || after.Pages != pages {
		t.Fatalf("restored memory: %+v", after)
	}
	if !after.Continues(before) || after.Counter == before.Counter {
		t.Fatalf("counter went from %d to %d", before.Counter, after.Counter)
	}
}

func TestVMPrecopyPolicies(t *testing.T) {
	// One migrate-dst serves these in turn: from the second on, the
	// adaptive policy's restore floor is what the previous restore took.
	var lastRestore time.Duration
	for _, p := range predump.Policies {
		policy := string(p)
		t.Run(policy, func(t *testing.T) {
			p := startWorkload(t, "precopy-"+policy, 16)
			time.Sleep(time.Second)
			before := query(t, p.cmd.Process.Pid, p.status)
			rep := migrateSrc(t, p.cmd.Process.Pid, "--strategy", "precopy", "--precopy-policy", policy)
			if rep.Strategy != "precopy" {
				t.Fatalf("strategy %q", rep.Strategy)
			}
			if lastRestore > 0 && (rep.PrecopyLimits == nil || rep.PrecopyLimits.RestoreFloor != lastRestore) {
				t.Errorf("restore floor %+v, want the previous restore's %s", rep.PrecopyLimits, lastRestore)
			}
			lastRestore = rep.RestoreTime
			migrated(t, p, before, rep, predump.Policy(policy))
		})
	}
}

func TestVMAutoPicksHybrid(t *testing.T) {
	p := startWorkload(t, "hybrid", 16)
	time.Sleep(time.Second)
	before := query(t, p.cmd.Process.Pid, p.status)
	rep := migrateSrc(t, p.cmd.Process.Pid, "--strategy", "auto")
	if rep.Strategy != "hybrid" {
		t.Fatalf("auto picked %q (%s), want hybrid on a kernel with soft-dirty and userfaultfd", rep.Strategy, rep.StrategyReason)
	}
	migrated(t, p, before, rep, predump.Adaptive)
	// After the rounds, only the last dirty set follows by post-copy.
	last := rep.PreCopy.Rounds[len(rep.PreCopy.Rounds)-1]
	if rep.PageBytes <= 0 || rep.PageBytes > int64(2*last.PagesWritten+256)*4096 {
		t.Errorf("post-copy moved %d bytes; the last round wrote %d pages", rep.PageBytes, last.PagesWritten)
	}
	if rep.MemoryTime <= 0 {
		t.Errorf("hybrid reported no post-copy completion time")
	}
}

// TestVMPolicyComparison is the VM tier's benchmark (make bench-vm, not
// part of make test-vm): each convergence policy on the same workload at
// a low and a high dirty rate, one table row per migration. It checks
// only that every migration moved the memory intact.
func TestVMPolicyComparison(t *testing.T) {
	for _, dirty := range []int{16, 1024} {
		for _, p := range predump.Policies {
			policy := string(p)
			name := fmt.Sprintf("cmp-%s-%d", policy, dirty)
			p := startWorkload(t, name, dirty)
			time.Sleep(time.Second)
			before := query(t, p.cmd.Process.Pid, p.status)
			rep := migrateSrc(t, p.cmd.Process.Pid, "--strategy", "precopy", "--precopy-policy", policy)
			<-p.exited
			after := query(t, rep.Pid, p.status)
			syscall.Kill(rep.Pid, syscall.SIGKILL)
			if after.Bad != 0 || !after.Continues(before) || after.Counter == before.Counter {
				t.Fatalf("%s: restored memory %+v", name, after)
			}
			// One JSON record per migration on the console, which is how
			// the VM reports: scripts/vm.sh table renders them.
			row := vmBenchRow{Policy: policy, DirtyPerSec: dirty, FinalPages: rep.Dump.PagesWritten,
				WireBytes: rep.BytesWire, Freeze: rep.FreezeTime}
			for _, r := range rep.PreCopy.Rounds {
				row.PagesPerRound = append(row.PagesPerRound, r.PagesWritten)
			}
			last := rep.PreCopy.Decisions[len(rep.PreCopy.Decisions)-1]
			row.Predicted, row.Reason = last.PredictedFreeze, last.Reason
			b, err := json.Marshal(row)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Printf("VMBENCH %s\n", b)
		}
	}
}

// vmBenchRow is one migration of TestVMPolicyComparison
// (scripts/vmtable.go reads it).
type vmBenchRow struct {
	Policy        string        `json:"policy"`
	DirtyPerSec   int           `json:"dirty_pages_per_sec"`
	PagesPerRound []uint64      `json:"pages_per_round"`
	FinalPages    uint64        `json:"final_dump_pages"`
	WireBytes     int64         `json:"wire_bytes"`
	Freeze        time.Duration `json:"freeze_ns"`
	Predicted     time.Duration `json:"predicted_freeze_ns"`
	Reason        string        `json:"why_it_stopped"`
}
