package migrate

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/protocol"
)

// fakeGuardHost records what the guard did; the tree's and CRIU's fates are
// scripted.
type fakeGuardHost struct {
	criuExitsAfter int  // waitExit calls before CRIU has ended; -1 never
	treeAlive      bool // the original runs once CRIU is done
	failUnlock     bool
	answer         string // the destination's answer to deliver; "" fails
	calls          []string
	waits          int
}

func (f *fakeGuardHost) deliver(_ context.Context, _ guardPlan, commit bool) (string, error) {
	f.calls = append(f.calls, map[bool]string{true: "deliver-commit", false: "deliver-abort"}[commit])
	if f.answer == "" {
		return "", errors.New("destination unreachable")
	}
	return f.answer, nil
}
func (f *fakeGuardHost) dropOutcome(guardPlan) { f.calls = append(f.calls, "drop-record") }
func (f *fakeGuardHost) reserve(context.Context, guardPlan) error {
	f.calls = append(f.calls, "reserve")
	return nil
}
func (f *fakeGuardHost) unreserve(context.Context, guardPlan) error {
	f.calls = append(f.calls, "unreserve")
	return nil
}
func (f *fakeGuardHost) recordRollback(guardPlan) error {
	f.calls = append(f.calls, "record-rollback")
	return nil
}

func (f *fakeGuardHost) waitExit(_ context.Context, pid int, _ time.Duration) bool {
	f.waits++
	f.calls = append(f.calls, "wait")
	return f.criuExitsAfter >= 0 && f.waits > f.criuExitsAfter
}
func (f *fakeGuardHost) kill(int)             { f.calls = append(f.calls, "kill"); f.criuExitsAfter = 0 }
func (f *fakeGuardHost) alive(guardPlan) bool { return f.treeAlive }
func (f *fakeGuardHost) thaw(string) error    { f.calls = append(f.calls, "thaw"); return nil }
func (f *fakeGuardHost) abortPageServer(string) {
	f.calls = append(f.calls, "abort")
}
func (f *fakeGuardHost) unlockNetwork(int) error {
	f.calls = append(f.calls, "unlock")
	if f.failUnlock {
		return errors.New("iptables gone")
	}
	return nil
}
func (f *fakeGuardHost) setRestart(context.Context, guardPlan) error {
	f.calls = append(f.calls, "restart")
	return nil
}
func (f *fakeGuardHost) announce(int, time.Duration) error {
	f.calls = append(f.calls, "announce")
	return nil
}
func (f *fakeGuardHost) remove(context.Context, guardPlan) error {
	f.calls = append(f.calls, "remove")
	return nil
}

var fastGuard = guardTimes{CRIUGrace: 50 * time.Millisecond, Abort: time.Millisecond}

func TestGuardResolveFakeHost(t *testing.T) {
	lazy := guardPlan{MigrationID: "m", Container: "c", Pid: 10, CRIU: 20, PageServer: "127.0.0.1:1", Announce: true,
		Restart: &restartPolicy{Name: "always"}}
	for _, tc := range []struct {
		name    string
		plan    guardPlan
		host    fakeGuardHost
		outcome string
		calls   []string // in this order, others may come between
		never   []string
	}{
		{
			name: "post-copy, CRIU resumes the original after its client reset",
			plan: withPostCopy(lazy), host: fakeGuardHost{criuExitsAfter: 1, treeAlive: true},
			outcome: GuardRolledBack, calls: []string{"abort", "wait", "abort", "wait", "unlock", "restart", "announce"}, never: []string{"kill", "remove"},
		},
		{
			name: "post-copy, every page had arrived: CRIU ended the original",
			plan: withPostCopy(lazy), host: fakeGuardHost{criuExitsAfter: 0},
			outcome: GuardCommitted, calls: []string{"wait", "remove"}, never: []string{"unlock", "restart", "announce", "kill"},
		},
		{
			name: "post-copy with --keep-source: the ended original stays",
			plan: func() guardPlan { p := withPostCopy(lazy); p.KeepSource = true; return p }(), host: fakeGuardHost{},
			outcome: GuardCommitted, never: []string{"remove"},
		},
		{
			name: "lazy dump whose page server never got a client: aborted until CRIU gives up",
			plan: lazy, host: fakeGuardHost{criuExitsAfter: 3, treeAlive: true},
			outcome: GuardRolledBack, calls: []string{"abort", "abort", "abort", "abort", "unlock"}, never: []string{"kill"},
		},
		{
			name: "a hung CRIU is killed after its grace, and the tree thawed",
			plan: func() guardPlan { p := lazy; p.Freezer = "/sys/fs/cgroup/freezer/x"; return p }(), host: fakeGuardHost{criuExitsAfter: -1, treeAlive: true},
			outcome: GuardRolledBack, calls: []string{"kill", "wait", "thaw", "unlock", "restart"},
		},
		{
			name: "killed before the destination reported its copy: nothing to tell it",
			plan: guardPlan{MigrationID: "m", Container: "c", Pid: 10, CRIU: 20}, host: fakeGuardHost{treeAlive: true},
			outcome: GuardRolledBack, calls: []string{"unlock"}, never: []string{"deliver-commit", "deliver-abort", "remove"},
		},
		{
			name: "ended at the commit point, the destination told: committed, original removed",
			plan: restoredPlan, host: fakeGuardHost{answer: protocol.OutcomeCommitted},
			outcome: GuardCommitted, calls: []string{"wait", "deliver-commit", "drop-record", "remove"}, never: []string{"unlock", "deliver-abort"},
		},
		{
			name:    "ended at the commit point, the destination told: the addresses the container took along are reserved here",
			plan:    restoredMovingPlan,
			host:    fakeGuardHost{answer: protocol.OutcomeCommitted},
			outcome: GuardCommitted, calls: []string{"wait", "reserve", "deliver-commit", "drop-record", "remove"},
		},
		{
			name:    "ended at the commit point, destination unreachable: the addresses are reserved all the same (the paused copy holds them)",
			plan:    restoredMovingPlan,
			host:    fakeGuardHost{},
			outcome: GuardInDoubt, calls: []string{"reserve", "deliver-commit"}, never: []string{"remove", "drop-record", "unreserve"},
		},
		{
			name:    "ended at the commit point, but the copy was removed on the destination: the original gets its addresses back",
			plan:    restoredMovingPlan,
			host:    fakeGuardHost{answer: protocol.OutcomeRemoved},
			outcome: GuardLost, calls: []string{"reserve", "deliver-commit", "drop-record", "unreserve"}, never: []string{"remove"},
		},
		{
			name: "ended at the commit point, destination unreachable: in doubt, original and record kept",
			plan: restoredPlan, host: fakeGuardHost{},
			outcome: GuardInDoubt, calls: []string{"deliver-commit"}, never: []string{"remove", "drop-record", "unlock"},
		},
		{
			name: "ended at the commit point, but the copy was removed on the destination: lost, original kept",
			plan: restoredPlan, host: fakeGuardHost{answer: protocol.OutcomeRemoved},
			outcome: GuardLost, calls: []string{"deliver-commit", "drop-record"}, never: []string{"remove"},
		},
		{
			name: "resumed after the destination reported its copy: rolled back, destination told to remove it",
			plan: restoredPlan, host: fakeGuardHost{treeAlive: true, answer: protocol.OutcomeRemoved},
			outcome: GuardRolledBack, calls: []string{"unlock", "record-rollback", "deliver-abort", "drop-record"}, never: []string{"deliver-commit", "remove"},
		},
		{
			name: "resumed after the destination reported its copy, destination unreachable: the rollback stays on record",
			plan: restoredPlan, host: fakeGuardHost{treeAlive: true},
			outcome: GuardRolledBack, calls: []string{"unlock", "record-rollback", "deliver-abort"}, never: []string{"deliver-commit", "remove", "drop-record"},
		},
		{
			name: "post-copy needs no telling: the destination decides by the pages",
			plan: func() guardPlan { p := withPostCopy(lazy); p.Restored = true; return p }(), host: fakeGuardHost{treeAlive: true},
			outcome: GuardRolledBack, never: []string{"deliver-commit", "deliver-abort"},
		},
		{
			name: "killed before the dump: the restart policy was not changed yet",
			plan: guardPlan{MigrationID: "m", Container: "c", Pid: 10}, host: fakeGuardHost{treeAlive: true},
			outcome: GuardRolledBack, calls: []string{"unlock"}, never: []string{"wait", "restart", "announce"},
		},
		{
			name:    "a process tree has no Docker state to put back",
			plan:    guardPlan{MigrationID: "m", Pid: 10, CRIU: 20, PageServer: "127.0.0.1:1", Restart: &restartPolicy{Name: "always"}},
			host:    fakeGuardHost{treeAlive: true},
			outcome: GuardRolledBack, calls: []string{"unlock"}, never: []string{"restart", "announce", "remove"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.host
			r := resolve(context.Background(), &h, tc.plan, fastGuard)
			if r.Outcome != tc.outcome {
				t.Fatalf("outcome %q, want %q (calls %v)", r.Outcome, tc.outcome, h.calls)
			}
			if !inOrder(h.calls, tc.calls) {
				t.Fatalf("calls %v, want %v in this order", h.calls, tc.calls)
			}
			for _, c := range tc.never {
				if slices.Contains(h.calls, c) {
					t.Fatalf("calls %v include %q", h.calls, c)
				}
			}
		})
	}
}

func TestGuardReportsFailedStepsFakeHost(t *testing.T) {
	h := fakeGuardHost{treeAlive: true, failUnlock: true}
	r := resolve(context.Background(), &h, guardPlan{Container: "c", Pid: 10, Restart: &restartPolicy{Name: "always"}}, fastGuard)
	if len(r.Errors) != 1 || !strings.Contains(r.Errors[0], "network lock") || !slices.Contains(h.calls, "restart") {
		t.Fatalf("errors %v, calls %v: a failed step must be reported and not stop the others", r.Errors, h.calls)
	}
}

var restoredPlan = guardPlan{MigrationID: "m", Container: "c", Pid: 10, CRIU: 20, Restored: true, Destination: "host2:7070"}

// restoredMovingPlan is restoredPlan of a container that takes an address
// along.
var restoredMovingPlan = func() guardPlan {
	p := restoredPlan
	p.Moved = []movedAddress{{Network: "shared", IPv4: "10.0.0.70"}}
	return p
}()

func withPostCopy(p guardPlan) guardPlan { p.PostCopy = true; return p }

// inOrder reports whether want appears in got as a subsequence.
func inOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

func TestReadPlansKeepsTheLast(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	in := strings.NewReader(`{"migration_id":"a","pid":1}` + "\n" + `not json` + "\n" + `{"migration_id":"a","pid":1,"post_copy":true}` + "\n")
	p, ok := readPlans[guardPlan](in, log)
	if !ok || !p.PostCopy || p.MigrationID != "a" {
		t.Fatalf("plan %+v, %v", p, ok)
	}
	if _, ok := readPlans[guardPlan](strings.NewReader(""), log); ok {
		t.Fatal("a plan from nothing")
	}
}
