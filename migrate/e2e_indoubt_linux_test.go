package migrate_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/workload"
	"github.com/dockmove/dockmove/migrate"
	"github.com/dockmove/dockmove/protocol"
)

// These tests break a stop-and-copy migration in its one two-party window:
// host2 reported its copy restored, host1's CRIU ended the original, and
// the commit has not reached host2, which then holds its copy paused, in
// doubt. Nobody sorts it out by hand: the source (or its guard) delivers
// the outcome in a new session and host2 resumes its copy.

// TestInDoubtResolvedByGuard kills migrate-src (SIGKILL) just before it
// sends the commit: its guard tells host2, which resumes the copy; the
// guard removes the ended original.
func TestInDoubtResolvedByGuard(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	name := unique("doubt")
	addr := runWorkload(t, ctx, e, name, lab.WorkloadImage)
	before := waitBeat(t, ctx, addr, 0)
	onStage, killed := atStage("commit", func(kill func()) {
		kill()
	})
	run := lab.RunSource(ctx, e.h1, e.h2, e.bin, name, onStage, "--strategy", "stop-and-copy", "--pause-at", "commit")
	if !killed() || run.Err == nil {
		t.Fatalf("migrate-src was not killed at the commit (%v):\n%s", run.Err, run.Stderr)
	}
	r := waitGuardResult(t, ctx, e, run.Events)
	t.Logf("guard: %+v", r)
	if r.Outcome != migrate.GuardCommitted || r.Delivered != "committed" || len(r.Errors) != 0 {
		t.Fatalf("guard: %+v", r)
	}
	assertCommittedOnHost2(t, ctx, e, name, addr, before, r.MigrationID)
}

// TestLinkCutBeforeCommitResolved cuts the agents' link just before the
// commit is sent and heals it once both sessions must have died of their
// keepalives, host2 pauses its copy, and migrate-src delivers the commit
// in a new session once the link is back, then succeeds.
func TestLinkCutBeforeCommitResolved(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 4*time.Minute)
	startDst(t, e)
	name := unique("cutcommit")
	addr := runWorkload(t, ctx, e, name, lab.WorkloadImage)
	before := waitBeat(t, ctx, addr, 0)
	watch := watchBeats(t, ctx, addr, 20)
	cut, heal := linkCutter(t, ctx, e, -1)
	healed := make(chan struct{})
	run := lab.RunSource(ctx, e.h1, e.h2, e.bin, name, func(stage string, _ func()) {
		if stage == "commit" {
			cut()
			time.AfterFunc(lab.LinkCutFor(), func() { heal(); close(healed) })
		}
	}, "--strategy", "stop-and-copy", "--pause-at", "commit", "--pause-for", "1s")
	select {
	case <-healed:
	default:
		t.Fatalf("migrate-src ended before the link healed (%v):\n%s", run.Err, run.Stderr)
	}
	if run.Err != nil {
		t.Fatalf("migrate-src: %v\n%s", run.Err, run.Stderr)
	}
	resolved := false
	for _, ev := range run.Events {
		resolved = resolved || ev.Stage == "resolve"
	}
	if !resolved {
		t.Fatalf("the migration never needed resolving: the link was not cut in the window\n%s", run.Stderr)
	}
	assertCommittedOnHost2(t, ctx, e, name, addr, before, migrationID(run.Events))
	if err := watch.WaitBeats(ctx, watch.Stats().Beats+20); err != nil {
		t.Fatalf("heartbeat stream after the resolve: %v", err)
	}
	if s := watch.Stop(); s.SeqBreaks != 0 || s.Resets != 0 || s.Err != nil {
		t.Fatalf("heartbeat stream broke: %+v", s)
	}
}

// assertCommittedOnHost2 checks the one copy runs on host2, unpaused, its
// memory intact, and nothing is left on host1 (container, outcome record).
func assertCommittedOnHost2(t *testing.T, ctx context.Context, e env, name, addr string, before workload.Beat, id string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		st, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name)
		if st == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host2's copy is %q", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitBeat(t, ctx, addr, before.Counter+1)
	if v, err := workload.Query(ctx, addr, workload.CmdVerify); err != nil || v.Bad != 0 {
		t.Fatalf("host2's copy: %+v, %v", v, err)
	}
	if out, _ := e.h1.Docker(ctx, "ps", "-aq", "--filter", "name=^/"+name+"$"); out != "" {
		t.Fatalf("host1 still holds the original %s", name)
	}
	if _, err := os.Stat(filepath.Join(e.h1.WorkDir(), "outcomes", id+".json")); err == nil {
		t.Fatalf("host1 still records migration %s as unresolved", id)
	}
	assertHost2Clean(t, ctx, e, name, false)
}

// linkCutter returns functions that drop, then restore, the agents'
// traffic between host1 and host2, at host1: both directions (dir < 0),
// host1 to host2 (dir 0) or host2 to host1 (dir 1).
func linkCutter(t *testing.T, ctx context.Context, e env, dir int) (cut, heal func()) {
	rules := [][]string{
		{"OUTPUT", "-d", e.h2.Addr, "-p", "tcp", "--dport", dstPort, "-j", "DROP"}, // host1 to host2
		{"INPUT", "-s", e.h2.Addr, "-p", "tcp", "--sport", dstPort, "-j", "DROP"},  // host2 to host1
	}
	if dir >= 0 {
		rules = rules[dir : dir+1]
	}
	iptables := func(op string, r []string) error {
		out, err := e.h1.Command(context.Background(), "iptables", append([]string{"-w", op}, r...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("iptables %s: %v: %s", op, err, out)
		}
		return nil
	}
	var once sync.Once
	heal = func() {
		once.Do(func() {
			for _, r := range rules {
				for iptables("-D", r) == nil { // every copy, whoever added it
				}
			}
		})
	}
	t.Cleanup(heal)
	return func() {
		for _, r := range rules {
			if err := iptables("-I", r); err != nil {
				t.Error(err)
			}
		}
	}, heal
}

// TestInDoubtShownAndResolvedByHand leaves a migration unresolved past its
// guard: the link is cut and migrate-src killed at the commit, and the
// guard killed too (as a reboot of host1 would). Both agents' status
// commands show it, host2's copy stays paused meanwhile (never two
// running), and `migrate-src status --resolve` settles it once the link is
// back.
func TestInDoubtShownAndResolvedByHand(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 4*time.Minute)
	startDst(t, e)
	name := unique("byhand")
	addr := runWorkload(t, ctx, e, name, lab.WorkloadImage)
	before := waitBeat(t, ctx, addr, 0)
	run, heal := killedAtCommitCutOff(t, ctx, e, name)
	// host2's session dies of its keepalive: the copy is paused, in doubt.
	var inDoubt []migrate.InFlight
	for deadline := time.Now().Add(time.Minute); len(inDoubt) == 0; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("host2 never reported the migration in doubt")
		}
		var all []migrate.InFlight
		agentJSON(t, ctx, e.h2, &all, "migrate-dst", "status", "--json", "--work-dir", e.h2.WorkDir())
		for _, m := range all {
			if m.InDoubt && m.Name == name {
				inDoubt = append(inDoubt, m)
			}
		}
	}
	if st, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name); st != "paused" {
		t.Fatalf("host2's copy in doubt is %q, want paused", st)
	}
	var src struct {
		Unresolved []migrate.OutcomeRecord `json:"unresolved"`
	}
	id := migrationID(run.Events)
	code := agentJSON(t, ctx, e.h1, &src, "migrate-src", "status", "--json", "--work-dir", e.h1.WorkDir())
	if code != 3 || !slices.ContainsFunc(src.Unresolved, func(r migrate.OutcomeRecord) bool { return r.MigrationID == id }) ||
		!slices.ContainsFunc(inDoubt, func(m migrate.InFlight) bool { return m.MigrationID == id }) {
		t.Fatalf("migrate-src status: exit %d, %+v; host2 in doubt: %+v; want %s in both", code, src, inDoubt, id)
	}
	// The guard is still trying; a reboot of host1 would end it.
	killGuardOf(t, ctx, e, name)
	heal()
	var resolved struct {
		Unresolved []migrate.OutcomeRecord `json:"unresolved"`
		Resolved   map[string]string       `json:"resolved"`
	}
	code = agentJSON(t, ctx, e.h1, &resolved, "migrate-src", "status", "--resolve", "--json", "--work-dir", e.h1.WorkDir(),
		"--tls-dir", filepath.Join(lab.TLSDir, e.h1.Name), "--docker-host", e.h1.DockerHost)
	if code != 0 || len(resolved.Unresolved) != 0 || resolved.Resolved[id] != "committed" {
		t.Fatalf("migrate-src status --resolve: exit %d, %+v", code, resolved)
	}
	assertCommittedOnHost2(t, ctx, e, name, addr, before, id)
}

// TestInDoubtResolvedAtNextContact: a migration left in doubt with no
// guard to resolve it (killed, as a reboot of host1 would end it) and
// migrate-dst restarted meanwhile (its copy stays paused) is resolved
// without a person: the next time host1 contacts host2 for anything (here
// a check of another container), host2's hello names the migration, host1
// delivers its recorded commit, and the copy runs on host2.
func TestInDoubtResolvedAtNextContact(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 4*time.Minute)
	dst := startDst(t, e)
	name := unique("nextcontact")
	addr := runWorkload(t, ctx, e, name, lab.WorkloadImage)
	before := waitBeat(t, ctx, addr, 0)
	run, heal := killedAtCommitCutOff(t, ctx, e, name)
	id := migrationID(run.Events)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if st, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name); st == "paused" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("host2 never paused its copy in doubt")
		}
	}
	killGuardOf(t, ctx, e, name)
	heal()
	dst.Stop()
	if err := dst.Start(); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name); st != "paused" {
		t.Fatalf("after migrate-dst restarted, host2's copy in doubt is %q, want paused", st)
	}

	other := unique("contact")
	runIdle(t, ctx, e, other, "--network", e.h1.Network)
	check := lab.RunSource(ctx, e.h1, e.h2, e.bin, other, nil, "check")
	var r migrate.Report
	if err := json.Unmarshal(check.Report, &r); err != nil || check.Err != nil {
		t.Fatalf("check: %v, %v\n%s", check.Err, err, check.Stderr)
	}
	if r.Resolved[id] != protocol.OutcomeCommitted || !strings.Contains(check.Stderr, "held migration "+id+" in doubt") {
		t.Fatalf("the check resolved %v, want %s committed:\n%s", r.Resolved, id, check.Stderr)
	}
	assertCommittedOnHost2(t, ctx, e, name, addr, before, id)
	if _, err := os.Stat(filepath.Join(e.h1.WorkDir(), "outcomes", id+".json")); err == nil {
		t.Fatal("host1 still records the migration as unresolved")
	}
}

// killedAtCommitCutOff migrates name by stop-and-copy and, as migrate-src
// enters the commit, cuts the agents' link and kills migrate-src (its
// guard takes over); heal brings the link back.
func killedAtCommitCutOff(t *testing.T, ctx context.Context, e env, name string) (run lab.SourceRun, heal func()) {
	t.Helper()
	cut, heal := linkCutter(t, ctx, e, -1)
	onStage, killed := atStage("commit", func(kill func()) {
		cut()
		kill()
	})
	run = lab.RunSource(ctx, e.h1, e.h2, e.bin, name, onStage, "--strategy", "stop-and-copy", "--pause-at", "commit")
	if !killed() {
		t.Fatalf("migrate-src never reached the commit:\n%s", run.Stderr)
	}
	return run, heal
}

// agentJSON runs an agent's command on h and decodes its JSON output into
// v; it returns the exit code.
func agentJSON(t *testing.T, ctx context.Context, h lab.Host, v any, agent string, args ...string) int {
	t.Helper()
	cmd := h.Command(ctx, filepath.Join(buildDir, agent), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", agent, args, err)
	}
	if jerr := json.Unmarshal(out, v); jerr != nil {
		t.Fatalf("%s %v: exit %d, %v: %s\n%s", agent, args, code, jerr, out, stderr.String())
	}
	return code
}

// killGuardOf kills the guard that holds the migration lock of container
// name on host1 (its pid is in the lock file).
func killGuardOf(t *testing.T, ctx context.Context, e env, name string) {
	t.Helper()
	id, err := e.h1.Docker(ctx, "inspect", "-f", "{{.Id}}", name)
	if err != nil {
		t.Fatal(err)
	}
	var holder struct {
		Pid  int    `json:"pid"`
		Role string `json:"role"`
	}
	data, err := os.ReadFile(filepath.Join(e.h1.WorkDir(), "locks", id+".lock"))
	if err == nil {
		err = json.Unmarshal(data, &holder)
	}
	if err != nil || holder.Role != "guard" || holder.Pid <= 0 {
		t.Fatalf("no guard holds %s's lock: %+v, %v", name, holder, err)
	}
	syscall.Kill(holder.Pid, syscall.SIGKILL)
}
