package migrate

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/dockmove/dockmove/protocol"
)

// The guard is what keeps the source's promise when migrate-src itself
// dies. While a container is being dumped, or its memory is still being
// served by CRIU after a lazy dump, the container's fate rests on this
// host: CRIU resumes the original when its client disappears, but CRIU
// leaves its network lock in the container (after a failed lazy dump), and
// migrate-src has changed the restart policy and must reclaim the address
// the destination announced. A killed migrate-src can do none of that, so
// before it dumps it starts a guard: a small process of its own session,
// which reads the plan migrate-src keeps sending it over a pipe. When the
// pipe closes without migrate-src saying it is done, the guard waits for
// CRIU to finish and then undoes (or, if the original was committed,
// completes) what migrate-src left half done.

// guardPlan is what the guard knows of the migration in flight. migrate-src
// sends a whole plan each time something changes; the last one counts.
type guardPlan struct {
	MigrationID string `json:"migration_id"`
	// Container is the original's Docker ID, "" for a process tree.
	Container string `json:"container,omitempty"`
	Docker    string `json:"docker,omitempty"` // dockerd address ("" default)
	// Pid is the tree's root on this host.
	Pid int `json:"pid"`
	// CRIU is the PID of the CRIU process dumping the tree, once known.
	CRIU int `json:"criu,omitempty"`
	// Freezer is the tree's cgroup v1 freezer directory, if CRIU uses it.
	Freezer string `json:"freezer,omitempty"`
	// PageServer is the lazy dump's page server (host:port).
	PageServer string `json:"page_server,omitempty"`
	// Restored is set once the destination is asked to restore, in a
	// migration without post-copy: from then on it may hold a restored copy
	// in doubt if the session breaks, until it hears the outcome from
	// Destination.
	Restored    bool   `json:"restored,omitempty"`
	Destination string `json:"destination,omitempty"`
	// CRIUVersion is this host's CRIU, announced when resolving.
	CRIUVersion int `json:"criu_version,omitempty"`
	// PostCopy is set once the destination reported its copy running while
	// memory still follows: from then on the destination holds the
	// address, and a dead original means every page was delivered.
	PostCopy bool `json:"post_copy,omitempty"`
	// Restart is the original's restart policy, set once migrate-src has
	// changed it to "no".
	Restart *restartPolicy `json:"restart,omitempty"`
	// Announce asks for the address to be announced after a rollback, for
	// AnnounceFor (the time the destination may take to notice the dead link).
	Announce    bool          `json:"announce,omitempty"`
	AnnounceFor time.Duration `json:"announce_for_ns,omitempty"`
	KeepSource  bool          `json:"keep_source,omitempty"`
	// Moved are the addresses the container takes along, to be reserved
	// here if the guard completes the commit (Image: the reservation's
	// root).
	Moved []movedAddress `json:"moved,omitempty"`
	Image string         `json:"image,omitempty"`
	// Done says migrate-src finished, committed or rolled back by itself:
	// the guard has nothing left to do.
	Done bool `json:"done,omitempty"`
}

type restartPolicy struct {
	Name string `json:"name"`
	Max  int    `json:"max"`
}

// Guard outcomes, recorded in the guard's state file.
const (
	GuardRolledBack = "rolled-back" // the original runs here again
	GuardCommitted  = "committed"   // CRIU ended the original after a complete transfer
	GuardInDoubt    = "in-doubt"    // the original is gone, the destination may not know it committed
	GuardGone       = "gone"        // the original ended before CRIU was known to dump it
	GuardLost       = "lost"        // committed, but the destination no longer has its copy: the ended original is kept
)

// GuardResult is what a guard did after migrate-src died.
type GuardResult struct {
	MigrationID string `json:"migration_id"`
	Container   string `json:"container,omitempty"`
	Pid         int    `json:"pid"`
	Outcome     string `json:"outcome"`
	// Delivered is what the destination answered when the guard told it
	// the outcome ("" if it did not need telling, or could not be told).
	Delivered string    `json:"delivered,omitempty"`
	Actions   []string  `json:"actions"`
	Errors    []string  `json:"errors,omitempty"`
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished"`
}

// guardHost is what the guard does to this host: real in guard_linux.go,
// fake in the tests of the decision logic.
type guardHost interface {
	// waitExit waits up to d for process pid to end; true if it has.
	waitExit(ctx context.Context, pid int, d time.Duration) bool
	// kill ends process pid at once.
	kill(pid int)
	// alive reports whether the tree's root still runs (is not a zombie).
	alive(p guardPlan) bool
	// thaw unfreezes the freezer cgroup dir if it is frozen.
	thaw(dir string) error
	// abortPageServer makes a lazy dump's page server fail (so CRIU
	// resumes the original) if it still waits for a client.
	abortPageServer(addr string)
	unlockNetwork(pid int) error
	setRestart(ctx context.Context, p guardPlan) error
	announce(pid int, d time.Duration) error
	remove(ctx context.Context, p guardPlan) error
	// deliver tells the destination the outcome (commit: the original is
	// gone) and returns its answer (protocol.Outcome*).
	deliver(ctx context.Context, p guardPlan, commit bool) (string, error)
	// dropOutcome removes the source's record of a delivered outcome.
	dropOutcome(p guardPlan)
	// reserve keeps here the addresses the container took along (p.Moved);
	// unreserve gives them back.
	reserve(ctx context.Context, p guardPlan) error
	unreserve(ctx context.Context, p guardPlan) error
	// recordRollback records durably that the original resumed, for the
	// destination holding its copy in doubt: delivered now, or when the
	// destination next hears from this host (it asks then).
	recordRollback(p guardPlan) error
}

// guardTimes bound the guard's waiting.
type guardTimes struct {
	// CRIUGrace is how long CRIU may go on after migrate-src died before
	// the guard kills it. CRIU notices a dead client at its next message
	// (the post-dump notification, a page request), so only a hung CRIU
	// lives this long; killing it earlier could catch it with its parasite
	// inside a task.
	CRIUGrace time.Duration
	// Abort is how often a lazy dump's page server is aborted while CRIU
	// runs (it may start listening after migrate-src died).
	Abort time.Duration
}

func defaultGuardTimes() guardTimes {
	return guardTimes{CRIUGrace: 2 * time.Minute, Abort: time.Second}
}

// readPlans returns the last plan (a JSON line: a guard's or a
// sentinel's) read from in before it ends, and whether one was read at all.
func readPlans[P any](in io.Reader, log *slog.Logger) (P, bool) {
	var last P
	var got bool
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var p P
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			log.Error("unreadable plan", "err", err)
			continue
		}
		last, got = p, true
	}
	return last, got
}

// resolve puts the host right after migrate-src died with plan p in
// force: first CRIU must be done with the tree (it resumes or ends it),
// then what migrate-src changed is undone, or the commit completed.
func resolve(ctx context.Context, h guardHost, p guardPlan, t guardTimes) GuardResult {
	r := GuardResult{MigrationID: p.MigrationID, Container: p.Container, Pid: p.Pid, Started: time.Now().UTC()}
	did := func(format string, a ...any) { r.Actions = append(r.Actions, fmt.Sprintf(format, a...)) }
	failed := func(what string, err error) {
		if err != nil {
			r.Errors = append(r.Errors, what+": "+err.Error())
		}
	}
	if p.CRIU != 0 {
		waitCRIU(ctx, h, p, t, did)
	}
	if p.Freezer != "" {
		// A CRIU that died while the tree was frozen leaves it frozen.
		failed("thaw", h.thaw(p.Freezer))
	}
	alive := h.alive(p)
	if alive {
		r.Outcome = GuardRolledBack
		rollbackHost(ctx, h, p, did, failed)
	} else if p.Restored || p.PostCopy {
		// The original is ended and its addresses live on with the copy:
		// reserved at once, before this host's Docker can give them to
		// another container (telling the destination may take long).
		reserveMovedAddresses(ctx, h, p, did, failed)
	}
	if p.Restored && !p.PostCopy {
		// The destination holds its copy in doubt: tell it what happened
		// (a commit was recorded before the original was ended).
		if alive {
			failed("record the rollback", h.recordRollback(p))
		}
		state, err := h.deliver(ctx, p, !alive)
		failed("tell the destination", err)
		r.Delivered = state
		if err == nil {
			did("destination told (%s)", state)
			if alive {
				h.dropOutcome(p)
			}
		}
	}
	if !alive {
		r.Outcome = commitHost(ctx, h, p, r.Delivered, did, failed)
	}
	r.Finished = time.Now().UTC()
	return r
}

// waitCRIU waits for the dump's CRIU to end, aborting a lazy dump's page
// server meanwhile, and kills a CRIU that outlives its grace.
func waitCRIU(ctx context.Context, h guardHost, p guardPlan, t guardTimes, did func(string, ...any)) {
	deadline := time.Now().Add(t.CRIUGrace)
	for time.Now().Before(deadline) {
		if p.PageServer != "" {
			h.abortPageServer(p.PageServer)
		}
		if h.waitExit(ctx, p.CRIU, t.Abort) {
			did("CRIU (pid %d) ended", p.CRIU)
			return
		}
	}
	h.kill(p.CRIU)
	did("killed CRIU (pid %d), still running %v after migrate-src died", p.CRIU, t.CRIUGrace)
	h.waitExit(ctx, p.CRIU, 10*time.Second)
}

// rollbackHost undoes migrate-src's changes to a resumed original.
func rollbackHost(ctx context.Context, h guardHost, p guardPlan, did func(string, ...any), failed func(string, error)) {
	if err := h.unlockNetwork(p.Pid); err != nil {
		failed("remove CRIU's network lock", err)
	} else {
		did("network lock removed")
	}
	if p.Restart != nil && p.Container != "" {
		if err := h.setRestart(ctx, p); err != nil {
			failed("restore the restart policy", err)
		} else {
			did("restart policy %q restored", p.Restart.Name)
		}
	}
	if p.Announce {
		if err := h.announce(p.Pid, p.AnnounceFor); err != nil {
			failed("announce the address", err)
		} else {
			did("address announced for %v", p.AnnounceFor)
		}
	}
}

// commitHost finishes a migration whose original CRIU ended. After
// post-copy that is proof of a complete transfer: the page server ends the
// original once the destination has every page. Otherwise the original was
// ended at the commit point, and the migration is committed once the
// destination confirms (delivered); until then the stopped original stays,
// and the source's record of the commit with it.
func commitHost(ctx context.Context, h guardHost, p guardPlan, delivered string, did func(string, ...any), failed func(string, error)) string {
	confirmed := delivered == protocol.OutcomeCommitted || delivered == protocol.OutcomeUnknown
	switch {
	case p.PostCopy || (p.Restored && confirmed):
		if !p.PostCopy {
			h.dropOutcome(p)
		}
		if p.Container != "" && !p.KeepSource {
			if err := h.remove(ctx, p); err != nil {
				failed("remove the committed original", err)
			} else {
				did("committed original removed")
			}
		}
		return GuardCommitted
	case p.Restored && delivered == protocol.OutcomeRemoved:
		h.dropOutcome(p)
		if len(p.Moved) > 0 {
			failed("give the original its addresses back", h.unreserve(ctx, p))
		}
		did("the destination no longer has its copy: the ended original is kept here to be started again")
		return GuardLost
	case p.CRIU != 0:
		did("original ended at the commit point; kept until the destination confirms")
		return GuardInDoubt
	}
	return GuardGone
}

// reserveMovedAddresses keeps here the addresses the container took along
// (p.Moved), so that this host's Docker gives them to no other container.
func reserveMovedAddresses(ctx context.Context, h guardHost, p guardPlan, did func(string, ...any), failed func(string, error)) {
	if len(p.Moved) == 0 {
		return
	}
	if err := h.reserve(ctx, p); err != nil {
		failed("reserve the addresses the container took along", err)
	} else {
		did("addresses the container took along reserved")
	}
}

// errGuardNoPlan reports a guard whose migrate-src died before sending a
// plan: nothing had been touched.
var errGuardNoPlan = errors.New("migrate: guard: migrate-src ended before sending a plan")
