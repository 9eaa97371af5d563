package migrate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/criu"
	"github.com/dockmove/dockmove/internal/events"
	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/workload"
	"github.com/dockmove/dockmove/migrate"
)

// TestLazyMigration256MiB moves 256 MiB by post-copy: the container restarts
// on host2 before its memory arrives; afterwards every page verifies, the
// counter continued, and it keeps running once the source agent is gone.
func TestLazyMigration256MiB(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	name := unique("lazy")
	addr := runWorkloadMiB(t, ctx, e, name, lab.WorkloadImage, 256, 500)
	before := waitBeat(t, ctx, addr, 0)
	report, stderr, err := runSrc(ctx, e, name, nil, "--strategy", "lazy")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	t.Logf("lazy 256 MiB: freeze %v, memory complete %v after the restart, %d bytes of pages", report.FreezeTime, report.MemoryTime, report.PageBytes)
	if report.PageBytes < 256<<20 || report.MemoryTime <= 0 {
		t.Fatalf("report: %+v", report)
	}
	// host2's daemon says what it did: every page asked for, some by
	// faults (the workload writes 500 random pages a second).
	if pc := report.PostCopy; pc == nil || pc.Faults == 0 || (pc.FaultPages+pc.BackgroundPages)*int64(os.Getpagesize()) < 256<<20 {
		t.Errorf("post-copy figures: %+v", report.PostCopy)
	} else {
		t.Logf("post-copy: %+v", *pc)
	}
	// The workload's pattern does not compress: its pages go raw, framed.
	if report.PageBytesWire <= 0 || report.PageBytesWire > report.PageBytes+report.PageBytes/1000 {
		t.Errorf("%d bytes of pages took %d on the wire", report.PageBytes, report.PageBytesWire)
	}
	// migrate-src has exited: the container no longer depends on host1.
	for range 3 {
		b, err := workload.Query(ctx, addr, workload.CmdVerify)
		if err != nil || b.Bad != 0 || b.Pages != 256<<20/workload.PageSize || !b.Continues(before) {
			t.Fatalf("after post-copy: %+v, %v (before %+v)", b, err, before)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if st, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name); st != "running" {
		t.Fatalf("on host2: %q", st)
	}
	assertHost2Clean(t, ctx, e, name, false)
}

// TestLazyLinkCutDuringPostCopy cuts the agents' link while memory is still
// arriving. The documented outcome: the source's CRIU loses its page
// client and resumes the original with its memory; host2 removes the copy
// that cannot continue; migrate-src exits non-zero saying so.
func TestLazyLinkCutDuringPostCopy(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 4*time.Minute)
	startDst(t, e)
	name := unique("cut")
	addr := runWorkloadMiB(t, ctx, e, name, lab.WorkloadImage, 1024, 500)
	before := waitBeat(t, ctx, addr, 0)
	watch := watchBeats(t, ctx, addr, 3) // a connection through the move
	defer watch.Stop()
	cut, _ := linkCutter(t, ctx, e, -1)
	onStage, cutDone := atStage("post-copy", func(func()) {
		cut()
	})
	_, stderr, err := runSrc(ctx, e, name, onStage, "--strategy", "lazy")
	if !cutDone() {
		t.Fatalf("migration never reached post-copy (err %v):\n%s", err, stderr)
	}
	if err == nil || !strings.Contains(stderr, "post-copy failed") || !strings.Contains(stderr, "resumed on this host") {
		t.Fatalf("migrate-src did not report the failed post-copy: %v\n%s", err, stderr)
	}
	after := waitBeat(t, ctx, addr, before.Counter)
	if v, err := workload.Query(ctx, addr, workload.CmdVerify); err != nil || v.Bad != 0 || v.Pages != 1<<30/workload.PageSize {
		t.Fatalf("host1's container after the cut: %+v, %v (counter %d -> %d)", v, err, before.Counter, after.Counter)
	}
	if st, _ := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name); st != "running" {
		t.Fatalf("on host1: %q", st)
	}
	assertNoNetworkLock(t, ctx, e, name)
	// host2 notices the dead link (keepalive) and removes its copy.
	waitGoneFromHost2(t, ctx, e, name, 90*time.Second)
	assertHost2Clean(t, ctx, e, name, true)
}

// TestLazySourceKilledDuringPostCopy kills migrate-src (SIGKILL) just after
// the container restarted on host2, while its memory is still on host1.
// host1 is alive, so the container must survive there: CRIU resumes the
// original (a dying agent resets the page server's connection instead of
// closing it, which CRIU would take for "every page delivered"), and the
// guard that migrate-src left behind removes CRIU's network lock,
// restores the restart policy and reclaims the address; host2 removes its
// copy; and both hosts serve the next migration.
func TestLazySourceKilledDuringPostCopy(t *testing.T) { lazySourceKilledDuringPostCopy(t, setup(t)) }

func lazySourceKilledDuringPostCopy(t *testing.T, e env) {
	ctx := ctxFor(t, 5*time.Minute)
	startDst(t, e)
	name := unique("srcgone")
	addr := runWorkloadMiB(t, ctx, e, name, lab.WorkloadImage, 1024, 500, "--restart", "unless-stopped")
	before := waitBeat(t, ctx, addr, 0)
	watch := watchBeats(t, ctx, addr, 3) // a connection through the move
	defer watch.Stop()
	onStage, killed := atStage("post-copy", func(kill func()) {
		kill()
	})
	run := lab.RunSource(ctx, e.h1, e.h2, e.bin, name, onStage, "--strategy", "lazy")
	killedRun, stderr, err := run.Events, run.Stderr, run.Err
	if !killed() {
		t.Fatalf("migration never reached post-copy (err %v):\n%s", err, stderr)
	}
	if err == nil {
		t.Fatal("killed migrate-src exited successfully")
	}
	// Within a bounded time the original answers on its address again,
	// its memory intact and its counter continued.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	after := waitBeat(t, wctx, addr, before.Counter+1)
	if v, err := workload.Query(ctx, addr, workload.CmdVerify); err != nil || v.Bad != 0 || v.Pages != 1<<30/workload.PageSize {
		t.Fatalf("host1's container after the kill: %+v, %v (counter %d -> %d)", v, err, before.Counter, after.Counter)
	}
	if st, _ := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Status}} {{.HostConfig.RestartPolicy.Name}}", name); st != "running unless-stopped" {
		t.Fatalf("host1's container is %q, want running with its restart policy", st)
	}
	waitGoneFromHost2(t, ctx, e, name, 90*time.Second)
	assertHost2Clean(t, ctx, e, name, true)
	assertNoNetworkLock(t, ctx, e, name)
	// The next migration waits for the guard to finish, then goes.
	if _, stderr, err := runSrc(ctx, e, name, nil, "--strategy", "lazy"); err != nil {
		t.Fatalf("migration after the kill: %v\n%s", err, stderr)
	}
	if v, err := workload.Query(ctx, addr, workload.CmdVerify); err != nil || v.Bad != 0 {
		t.Fatalf("after the next migration: %+v, %v", v, err)
	}
	r := waitGuardResult(t, ctx, e, killedRun)
	if r.Outcome != migrate.GuardRolledBack || len(r.Errors) != 0 {
		t.Fatalf("guard: %+v", r)
	}
	t.Logf("guard: %v in %v", r.Actions, r.Finished.Sub(r.Started))
}

// migrationID is the migration's ID as a migrate-src run's events name it.
func migrationID(events []events.Event) string {
	for _, ev := range events {
		if ev.MigrationID != "" {
			return ev.MigrationID
		}
	}
	return ""
}

// waitGuardResult waits for what the guard of a killed migrate-src run
// (its events) did on host1.
func waitGuardResult(t *testing.T, ctx context.Context, e env, events []events.Event) migrate.GuardResult {
	t.Helper()
	id := migrationID(events)
	path := filepath.Join(e.h1.WorkDir(), "guards", id+".json")
	for {
		var r migrate.GuardResult
		data, err := os.ReadFile(path)
		if err == nil {
			if err := json.Unmarshal(data, &r); err != nil {
				t.Fatalf("guard of migration %q: %v", id, err)
			}
			return r
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no result from the guard of migration %q: %v", id, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestLazyMultiProcessWithForks moves by post-copy a container whose
// memory belongs to several processes: two workloads (one dirtying 2560
// pages/s) and the shell that started them, which holds a 16 MiB string
// and forks all the time: every second or so a forked child reads the
// string into md5sum and compares it with the sum taken at the start. The
// children fault the memory they share with the shell at the fork, and
// some forks happen while that memory is still on host1. Afterwards both
// workloads verify, and every sum the shell took matched.
func TestLazyMultiProcessWithForks(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 4*time.Minute)
	startDst(t, e)
	name := unique("forks")
	addr := startContainer(t, ctx, e, name, nil, lab.WorkloadImage, "sh", "-c",
		"x=$(head -c 8388608 /dev/urandom | od -An -v -tx1 | tr -d ' \\n'); "+
			"want=$(echo \"$x\" | md5sum); "+
			"/usr/local/bin/workload --data-dir /data --mem-mib 256 --dirty-pages-per-sec 2560 --verify-every 1s & "+
			"/usr/local/bin/workload --data-dir /tmp --mem-mib 128 --listen 127.0.0.1:7001 --dirty-pages-per-sec 500 --verify-every 0 & "+
			"while :; do "+
			"if [ \"$(echo \"$x\" | md5sum)\" = \"$want\" ]; then echo ok >>/tmp/sums; else echo bad >>/tmp/sums; fi; "+
			"sleep 0.05; done")
	before := waitBeat(t, ctx, addr, 0)
	sums := func(h lab.Host) (ok, bad int) {
		t.Helper()
		out, err := h.Docker(ctx, "exec", name, "cat", "/tmp/sums")
		if err != nil {
			t.Fatalf("the shell's sums on %s: %v", h.Name, err)
		}
		return strings.Count(out, "ok"), strings.Count(out, "bad")
	}
	for ok, _ := sums(e.h1); ok < 2; ok, _ = sums(e.h1) {
		time.Sleep(200 * time.Millisecond)
	}
	report, stderr, err := runSrc(ctx, e, name, nil, "--strategy", "lazy")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	t.Logf("lazy, three processes and forks: freeze %v, memory complete %v after the restart", report.FreezeTime, report.MemoryTime)
	if report.MemoryTime <= 0 {
		t.Fatalf("no post-copy in the report: %+v", report)
	}
	if b, err := workload.Query(ctx, addr, workload.CmdVerify); err != nil || b.Bad != 0 || b.Pages != 256<<20/workload.PageSize || !b.Continues(before) {
		t.Fatalf("the first workload after post-copy: %+v, %v (before %+v)", b, err, before)
	}
	if out, err := e.h2.Docker(ctx, "exec", name, "/usr/local/bin/workload", "query", "127.0.0.1:7001", "verify"); err != nil {
		t.Fatalf("the second workload after post-copy: %v\n%s", err, out)
	}
	ok0, _ := sums(e.h2)
	deadline := time.Now().Add(time.Minute)
	for ok, _ := sums(e.h2); ok < ok0+3; ok, _ = sums(e.h2) {
		if time.Now().After(deadline) {
			t.Fatalf("the shell took %d sums on host2 in a minute, want 3", ok-ok0)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if ok, bad := sums(e.h2); bad != 0 {
		t.Fatalf("the shell's string changed: %d sums of %d did not match", bad, ok+bad)
	}
	assertHost2Clean(t, ctx, e, name, false)
}

// TestSecondMigrationRefusedWhileInFlight starts more migrate-src runs of
// a container whose post-copy is under way, to the same destination and
// to another one (host3, which would take it): host1 refuses both, naming
// the first, host3 receives nothing, and the first completes.
func TestSecondMigrationRefusedWhileInFlight(t *testing.T) {
	e := setup(t)
	e3 := setupHosts(t, e.h1.Name, "host3")
	ctx := ctxFor(t, 4*time.Minute)
	startDst(t, e)
	startDst(t, e3)
	name := unique("twice")
	t.Cleanup(func() { cleanupDocker(e3.h2, "rm", "-f", name) })
	// 1 GiB: post-copy lasts about 6 s here, the other runs' refusals
	// take a few hundred milliseconds.
	addr := runWorkloadMiB(t, ctx, e, name, lab.WorkloadImage, 1024, 500)
	var second, third lab.SourceRun
	first := lab.RunSource(ctx, e.h1, e.h2, e.bin, name, func(stage string, _ func()) {
		if stage == "post-copy" && second.Stderr == "" {
			second = lab.RunSource(ctx, e.h1, e.h2, e.bin, name, nil, "--strategy", "stop-and-copy")
			// Another destination, which would take it: host1 refuses too.
			third = lab.RunSource(ctx, e.h1, e3.h2, e.bin, name, nil, "--strategy", "stop-and-copy")
		}
	}, "--strategy", "lazy")
	if first.Err != nil {
		t.Fatalf("first migration: %v\n%s", first.Err, first.Stderr)
	}
	want := fmt.Sprintf("already being migrated by migrate-src (pid %d) to %s", first.Events[0].Pid, net.JoinHostPort(e.h2.Addr, lab.AgentPort))
	for _, run := range []lab.SourceRun{second, third} {
		if run.Err == nil || !strings.Contains(run.Stderr, want) {
			t.Fatalf("another migration: %v, want %q in:\n%s", run.Err, want, run.Stderr)
		}
	}
	if out, _ := e3.h2.Docker(ctx, "ps", "-aq", "--filter", "name=^/"+name+"$"); out != "" {
		t.Fatalf("host3 holds a container named %s", name)
	}
	if v, err := workload.Query(ctx, addr, workload.CmdVerify); err != nil || v.Bad != 0 {
		t.Fatalf("after the migration: %+v, %v", v, err)
	}
	if st, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name); st != "running" {
		t.Fatalf("on host2: %q", st)
	}
}

// assertNoNetworkLock checks that CRIU's network lock is gone from the
// container on host1: its iptables chain or nftables table from the
// network namespace, and TCP repair mode from the sockets of its
// processes (a socket left in it neither sends nor acknowledges: its
// connection is mute for ever, though established). The tests calling it hold a client connection through
// the move, so that there is a socket to check.
func assertNoNetworkLock(t *testing.T, ctx context.Context, e env, name string) {
	t.Helper()
	if left := networkLockLeft(ctx, e.h1, name); left != "" {
		t.Fatal(left)
	}
}

// networkLockLeft says what is left of CRIU's network lock in container
// name on h (repair-mode TCP sockets, its iptables chain or nftables
// table), or "".
func networkLockLeft(ctx context.Context, h lab.Host, name string) string {
	pid, err := h.Docker(ctx, "inspect", "-f", "{{.State.Pid}}", name)
	if err != nil {
		return err.Error()
	}
	p, err := strconv.Atoi(pid)
	if err != nil {
		return fmt.Sprintf("%s's container %s: pid %q", h.Name, name, pid)
	}
	if n, err := criu.RepairedSockets(p); err != nil || n != 0 {
		ss, _ := exec.CommandContext(ctx, "nsenter", "--net=/proc/"+pid+"/ns/net", "ss", "-tn").CombinedOutput()
		return fmt.Sprintf("%s's container has %d TCP sockets left in repair mode (%v):\n%s", h.Name, n, err, ss)
	}
	out, err := exec.CommandContext(ctx, "nsenter", "--net=/proc/"+pid+"/ns/net", "iptables", "-w", "-S").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("iptables in %s's container: %v: %s", h.Name, err, out)
	}
	if strings.Contains(string(out), "CRIU") {
		return fmt.Sprintf("CRIU's network lock is still in %s's container:\n%s", h.Name, out)
	}
	if tables, err := criu.LockTables(p); err != nil || len(tables) != 0 {
		return fmt.Sprintf("CRIU's nftables lock is still in %s's container: %q (%v)", h.Name, tables, err)
	}
	return ""
}

// watchStops watches container name on h from now until it is no longer
// running, for at most within, and then sends its state and how long
// after the call it ended; the channel is closed without a value if it
// runs on.
func watchStops(ctx context.Context, h lab.Host, name string, within time.Duration) <-chan string {
	c := make(chan string, 1)
	start := time.Now()
	go func() {
		defer close(c)
		for time.Since(start) < within {
			st, _ := h.Docker(ctx, "inspect", "-f", "{{.State.Status}} exit={{.State.ExitCode}}", name)
			if !strings.HasPrefix(st, "running") {
				c <- fmt.Sprintf("%s, %v after", st, time.Since(start).Round(10*time.Millisecond))
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return c
}

// sentinelLog is what host h's sentinels logged of container id.
func sentinelLog(h lab.Host, id string) string {
	logs, _ := filepath.Glob(filepath.Join(h.WorkDir(), "sentinels", "*.log"))
	var out []string
	for _, l := range logs {
		if data, err := os.ReadFile(l); err == nil && id != "" && strings.Contains(string(data), id) {
			out = append(out, string(data))
		}
	}
	return strings.Join(out, "")
}

// TestLazyDestinationKilledDuringPostCopy kills migrate-dst (SIGKILL) while
// memory is still arriving: host2's copy cannot get its pages and must not
// run on (it would read zero pages); the original resumes on host1, and
// the restarted migrate-dst leaves host2 clean.
func TestLazyDestinationKilledDuringPostCopy(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 4*time.Minute)
	d := startDst(t, e)
	name := unique("dstgone")
	addr := runWorkloadMiB(t, ctx, e, name, lab.WorkloadImage, 1024, 500)
	before := waitBeat(t, ctx, addr, 0)
	watch := watchBeats(t, ctx, addr, 3) // a connection through the move
	defer watch.Stop()
	// From the kill on, host2's copy is watched: it must stop at once
	// (its sentinel stops it as migrate-dst dies; without one, it ran on
	// zero-filled memory beside the resumed original and answered for the
	// address: CI35 read host2's copy as host1's).
	var stopped <-chan string
	onStage, killed := atStage("post-copy", func(func()) {
		d.Kill()
		stopped = watchStops(ctx, e.h2, name, 3*time.Second)
	})
	_, stderr, err := runSrc(ctx, e, name, onStage, "--strategy", "lazy")
	if !killed() {
		t.Fatalf("migration never reached post-copy (err %v):\n%s", err, stderr)
	}
	st, ok := <-stopped
	if !ok {
		t.Fatal("host2's copy ran on for 3 s without its memory after migrate-dst died")
	}
	t.Logf("host2's copy: %s", st)
	// Stopped by its sentinel (exit 137 is SIGKILL's; a copy could also
	// die of its zero pages on its own), which says so in its log.
	if !strings.Contains(st, "exit=137") {
		t.Errorf("host2's copy ended otherwise than by its sentinel's SIGKILL: %s", st)
	}
	id, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.Id}}", name)
	if log := sentinelLog(e.h2, id); !strings.Contains(log, "killed pid") {
		t.Errorf("no sentinel of host2 says it killed the copy %s:\n%s", id, log)
	}
	failedMigration(t, ctx, e, name, addr, before, err, stderr, "resumed on this host")
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	waitGoneFromHost2(t, ctx, e, name, 30*time.Second)
	assertHost2Clean(t, ctx, e, name, true)
	assertNoNetworkLock(t, ctx, e, name)
}
