package migrate

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

// Observer learns what a destination does with the migrations offered to
// it, for a monitoring system (migrate-dst --metrics-listen counts them
// with package internal/metrics). Its methods are called on the
// migrations' goroutines, several at once: they must be safe for
// concurrent use and return at once.
type Observer interface {
	// MigrationStarted: this host accepted a migration (its preflight
	// passed; a dry run is not one). It is in flight until
	// MigrationEnded.
	MigrationStarted(strategy protocol.Strategy)
	// MigrationEnded: a migration that MigrationStarted announced ended,
	// once this host undid what a failure left.
	MigrationEnded(MigrationResult)
	// Refused: this host refused a peer or a migration (dry runs
	// included) for a reason of this class. A preflight refused for
	// reasons of several classes is reported once for each class.
	Refused(RefusalReason)
}

// MigrationResult is how a migration this host accepted ended.
type MigrationResult struct {
	Strategy protocol.Strategy
	Outcome  Outcome
	// Freeze is the part of the freeze spent on this host: from the
	// final dump received to the copy reported running (the destination's
	// steps of the source's Report.Freeze). The whole freeze, dump and
	// shipping included, is only known to the source (Report.FreezeTime).
	// 0 when no copy was reported running.
	Freeze time.Duration
	// PostCopy is how long a post-copy migration's memory took to follow
	// its copy: from the copy reported running to the last page here.
	// 0 for the other strategies, and when the pages never all arrived.
	PostCopy time.Duration
	// WireBytes is what arrived on the migration's connection, TLS and
	// framing included.
	WireBytes int64
}

// Outcome is how a migration this host accepted ended.
type Outcome string

const (
	// OutcomeOK: committed; the copy here is the container.
	OutcomeOK Outcome = "ok"
	// OutcomeRolledBack: failed before the copy was reported running;
	// what this host made is removed and the source resumes its original.
	OutcomeRolledBack Outcome = "rolled_back"
	// OutcomeInDoubt: failed after the copy was reported running, before
	// the commit arrived; the copy is paused until the source resolves it.
	OutcomeInDoubt Outcome = "in_doubt"
	// OutcomeFailed: a post-copy migration failed while part of its
	// memory was still on the source; the copy here is removed.
	OutcomeFailed Outcome = "failed"
)

// Outcomes lists every Outcome.
var Outcomes = []Outcome{OutcomeOK, OutcomeRolledBack, OutcomeInDoubt, OutcomeFailed}

func (o Outcome) String() string { return string(o) }

// RefusalReason is the class of a reason this host refused a peer or a
// migration: a fixed vocabulary, never the reason's text (which a peer can
// shape).
type RefusalReason string

const (
	// RefusalAuth: TLS authentication failed, or the source is not one
	// of the allowed sources.
	RefusalAuth RefusalReason = "auth"
	// RefusalVersion: the peers' versions cannot work together (protocol,
	// Docker API, a setting this host's Docker does not know).
	RefusalVersion RefusalReason = "version"
	// RefusalBadInput: the peer broke the protocol: a malformed or
	// unexpected message, or none in time.
	RefusalBadInput RefusalReason = "bad_input"
	// RefusalBusy: too many connections in their handshake, or the
	// container or the migration is already under way here.
	RefusalBusy RefusalReason = "busy"
	// RefusalConflict: something here already has the name: a container,
	// a volume, a record of the migration ID.
	RefusalConflict RefusalReason = "conflict"
	// RefusalPolicy: this host's policy (capabilities, labels, settings,
	// devices, bind mounts, plain processes).
	RefusalPolicy RefusalReason = "policy"
	// RefusalUnsupported: this host cannot (no Docker, no restore
	// runtime, no userfaultfd, another cgroup version).
	RefusalUnsupported RefusalReason = "unsupported"
	// RefusalNetwork: the container's networks, addresses or published
	// ports do not fit here.
	RefusalNetwork RefusalReason = "network"
	// RefusalDisk: not enough disk space here.
	RefusalDisk RefusalReason = "disk"
	// RefusalOther: anything else (this host's Docker could not be
	// asked, say).
	RefusalOther RefusalReason = "other"
)

// RefusalReasons lists every RefusalReason.
var RefusalReasons = []RefusalReason{RefusalAuth, RefusalVersion, RefusalBadInput, RefusalBusy, RefusalConflict,
	RefusalPolicy, RefusalUnsupported, RefusalNetwork, RefusalDisk, RefusalOther}

func (r RefusalReason) String() string { return string(r) }

// refusal is a reason to refuse a migration, with the classes of what it
// names; its text is the reason's, unchanged.
type refusal struct {
	classes []RefusalReason
	err     error
}

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }

// refuseFor classes err (nil stays nil).
func refuseFor(class RefusalReason, err error) error {
	if err == nil {
		return nil
	}
	return &refusal{classes: []RefusalReason{class}, err: err}
}

// joinRefusals makes one refusal of the reasons found (nil when none):
// their texts in order, their classes each once.
func joinRefusals(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	texts := make([]string, len(errs))
	var classes []RefusalReason
	for i, err := range errs {
		texts[i] = err.Error()
		for _, c := range refusalReasons(err) {
			if !slices.Contains(classes, c) {
				classes = append(classes, c)
			}
		}
	}
	return &refusal{classes: classes, err: errors.New(strings.Join(texts, "; "))}
}

// refusalReasons are the classes of the refusal err: those given to it,
// or else its transfer error's; RefusalOther when it has neither.
func refusalReasons(err error) []RefusalReason {
	var r *refusal
	switch {
	case errors.As(err, &r):
		return r.classes
	case errors.Is(err, transfer.ErrAuth):
		return []RefusalReason{RefusalAuth}
	case errors.Is(err, transfer.ErrIncompatible):
		return []RefusalReason{RefusalVersion}
	case errors.Is(err, transfer.ErrBadMessage), errors.Is(err, transfer.ErrUnknownMessage),
		errors.Is(err, transfer.ErrFrameTooLarge), errors.Is(err, transfer.ErrUnexpectedMessage), errors.Is(err, transfer.ErrIdle):
		return []RefusalReason{RefusalBadInput}
	}
	return []RefusalReason{RefusalOther}
}
