//go:build linux

package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

// The source's durable record of a commit it decided but has not yet had
// acknowledged: written (atomically, synced) before CRIU is told to end
// the original, removed once the destination confirms. While one exists
// the destination may hold its copy paused, in doubt; migrate-src, its
// guard, or `migrate-src status --resolve` deliver it.

const outcomesDirName = "outcomes"

// OutcomeRecord is a commit decided here and not yet confirmed by the
// destination.
type OutcomeRecord struct {
	MigrationID string    `json:"migration_id"`
	Container   string    `json:"container"` // as the user named it
	Destination string    `json:"destination"`
	Commit      bool      `json:"commit"`
	Decided     time.Time `json:"decided"`
	// The original, to remove once the destination confirms.
	ContainerID string `json:"container_id,omitempty"`
	Docker      string `json:"docker,omitempty"`
	KeepSource  bool   `json:"keep_source,omitempty"`
	// DestinationName is the name the destination's certificate proved.
	DestinationName string `json:"destination_name,omitempty"`
	// Moved are the addresses the container took along, reserved here
	// once the commit is confirmed (Image: the reservation's root).
	Moved []movedAddress `json:"moved,omitempty"`
	Image string         `json:"image,omitempty"`
}

func outcomePath(workDir, id string) string {
	return filepath.Join(workDir, outcomesDirName, id+".json")
}

func saveOutcome(workDir string, r OutcomeRecord) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return writeFileAtomic(outcomePath(workDir, r.MigrationID), data)
}

func dropOutcome(workDir, id string) { os.Remove(outcomePath(workDir, id)) }

// PendingOutcomes lists the records in workDir: commits the destination
// has not confirmed.
func PendingOutcomes(workDir string) ([]OutcomeRecord, error) {
	ents, err := os.ReadDir(filepath.Join(workDir, outcomesDirName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var out []OutcomeRecord
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		var r OutcomeRecord
		data, rerr := os.ReadFile(filepath.Join(workDir, outcomesDirName, e.Name()))
		if rerr == nil && json.Unmarshal(data, &r) == nil && r.MigrationID+".json" == e.Name() {
			out = append(out, r)
		}
	}
	return out, err
}

// deliverOutcome tells the destination at addr the outcome of migration
// id, in sessions of its own, until it answers anything but "pending" or
// ctx ends. It returns the destination's answer.
func deliverOutcome(ctx context.Context, addr string, tc transfer.Config, id string, commit bool, log *slog.Logger) (string, error) {
	backoff := 200 * time.Millisecond
	for {
		state, err := resolveOnce(ctx, addr, tc, id, commit)
		if err == nil && state != protocol.OutcomePending {
			return state, nil
		}
		if err == nil {
			err = errors.New("the destination still runs the migration's session")
		}
		log.Info("resolve: not yet delivered", "migration", id, "err", err)
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the outcome of migration %s did not reach %s: %w", id, addr, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 3*time.Second)
	}
}

func resolveOnce(ctx context.Context, addr string, tc transfer.Config, id string, commit bool) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, tc.HandshakeTimeout+5*time.Second)
	defer cancel()
	sess, err := transfer.Dial(ctx, addr, tc)
	if err != nil {
		return "", err
	}
	defer sess.Close()
	if err := sess.Send(ctx, &protocol.Resolve{MigrationID: id, Commit: commit}); err != nil {
		return "", err
	}
	o, err := transfer.Expect[*protocol.Outcome](ctx, sess)
	if err != nil {
		return "", err
	}
	return o.State, nil
}

// ResolvePending delivers every commit recorded in workDir that its
// destination has not confirmed, and removes each record (and the ended
// original, unless it was to be kept) once the destination answers. It
// returns what each destination said, by migration ID.
func ResolvePending(ctx context.Context, workDir string, tc transfer.Config, log *slog.Logger) (map[string]string, error) {
	recs, err := PendingOutcomes(workDir)
	if err != nil {
		return nil, err
	}
	said := map[string]string{}
	var errs []error
	for _, r := range recs {
		release, free := tryLock(workDir, r.ContainerID)
		if !free {
			errs = append(errs, fmt.Errorf("migration %s: its guard (or a migrate-src) is delivering it now", r.MigrationID))
			continue
		}
		state, err := resolveRecord(ctx, workDir, r.Destination, tc, r, log)
		release()
		if state != "" {
			said[r.MigrationID] = state
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return said, errors.Join(errs...)
}

// resolveRecord delivers record r to its destination at addr and, once it
// answered, removes the record (and the ended original of a commit,
// unless it was to be kept). It returns the destination's answer.
func resolveRecord(ctx context.Context, workDir, addr string, tc transfer.Config, r OutcomeRecord, log *slog.Logger) (string, error) {
	// What happened decides, not what was decided: an original that runs
	// was resumed by CRIU, and the destination's copy must go. A Docker
	// that cannot say decides nothing.
	running, err := originalRunning(ctx, r)
	if err != nil {
		return "", fmt.Errorf("whether the original of migration %s runs here: %w", r.MigrationID, err)
	}
	commit := r.Commit && !running
	if commit {
		// Its addresses stay with the copy: reserved before the
		// destination may start using them for good.
		if err := reserveMoved(ctx, workDir, r, log); err != nil {
			log.Error("this host could not reserve the addresses the container took along", "migration", r.MigrationID, "err", err)
		}
	}
	state, err := deliverOutcome(ctx, addr, tc, r.MigrationID, commit, log)
	if err != nil {
		return "", err
	}
	if commit && state == protocol.OutcomeRemoved {
		log.Error("the destination no longer has its copy: the ended original is kept here to be started again", "migration", r.MigrationID, "container", r.Container)
		// Its addresses are its own again.
		if err := unreserveMoved(ctx, r); err != nil {
			return state, err
		}
	}
	if commit && (state == protocol.OutcomeCommitted || state == protocol.OutcomeUnknown) {
		if err := removeOriginal(ctx, r); err != nil {
			return state, err
		}
	}
	dropOutcome(workDir, r.MigrationID)
	return state, nil
}

// reconcile answers a destination that holds migrations from this host in
// doubt (it names them in its hello): each that this host has a record of
// for this very destination (its address, and the name its certificate
// proved when the record was made) is delivered now, within a bounded
// time, unless a guard or another migrate-src is at work on it (its lock);
// one without such a record is left, with a warning, to
// `migrate-src status --resolve` where it was recorded.
func (s *source) reconcile(ctx context.Context, ids []string) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second) // the session waits meanwhile
	defer cancel()
	recs, _ := PendingOutcomes(s.cfg.WorkDir)
	peer := s.sess.PeerName()
	for _, id := range ids {
		i := slices.IndexFunc(recs, func(r OutcomeRecord) bool {
			return r.MigrationID == id && r.Destination == s.cfg.To && (r.DestinationName == "" || r.DestinationName == peer)
		})
		if i < 0 {
			s.warn(fmt.Sprintf("%s holds migration %s in doubt, and this host's work directory has no record of it for that destination: "+
				"run `migrate-src status --resolve` with the work directory that migrated it", s.cfg.To, id))
			continue
		}
		r := recs[i]
		release, free := tryLock(s.cfg.WorkDir, r.ContainerID)
		if !free {
			continue // its guard (or a migrate-src) is delivering it
		}
		state, err := resolveRecord(ctx, s.cfg.WorkDir, s.cfg.To, s.tc, r, s.log)
		release()
		if err != nil {
			s.warn(fmt.Sprintf("%s holds migration %s in doubt; telling it the outcome failed: %v (`migrate-src status --resolve` tries again)", s.cfg.To, id, err))
			continue
		}
		if s.report.Resolved == nil {
			s.report.Resolved = map[string]string{}
		}
		s.report.Resolved[id] = state
		s.stageDetail("resolved", fmt.Sprintf(": %s held migration %s in doubt; told its outcome, it says %s", s.cfg.To, id, state))
	}
}

// originalRunning reports whether the original of record r runs here; an
// original Docker no longer has does not.
func originalRunning(ctx context.Context, r OutcomeRecord) (running bool, err error) {
	if r.ContainerID == "" {
		return false, nil
	}
	err = withDocker(r.Docker, func(dk *docker.Client) error {
		c, err := dk.Inspect(ctx, r.ContainerID)
		if errors.Is(err, docker.ErrNotFound) {
			return nil
		}
		running = err == nil && c.State != nil && c.State.Running
		return err
	})
	return running, err
}

// removeOriginal removes the ended original of a committed migration,
// unless it was to be kept.
func removeOriginal(ctx context.Context, r OutcomeRecord) error {
	if r.ContainerID == "" || r.KeepSource {
		return nil
	}
	return withDocker(r.Docker, func(dk *docker.Client) error { return dk.Remove(ctx, r.ContainerID) })
}

// reserveMoved keeps here the addresses the committed container took
// along, once Docker has seen its original end.
func reserveMoved(ctx context.Context, workDir string, r OutcomeRecord, log *slog.Logger) error {
	if len(r.Moved) == 0 {
		return nil
	}
	return withDocker(r.Docker, func(dk *docker.Client) error {
		if r.ContainerID != "" {
			waitStopped(ctx, dk, r.ContainerID)
		}
		_, err := reserveAway(ctx, dk, workDir, r.Moved, r.Image, log)
		return err
	})
}

// unreserveMoved removes the reservations of the addresses a container
// took along that did not stay away after all.
func unreserveMoved(ctx context.Context, r OutcomeRecord) error {
	if len(r.Moved) == 0 {
		return nil
	}
	return withDocker(r.Docker, func(dk *docker.Client) error {
		for _, m := range r.Moved {
			res, ok, err := dk.FindReservation(ctx, m.Network, m.IPv4)
			if err != nil {
				return err
			}
			if ok {
				if err := dk.Remove(ctx, res.ID); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// withDocker runs f with a client of the dockerd at addr ("" default).
func withDocker(addr string, f func(*docker.Client) error) error {
	dk, err := docker.New(addr)
	if err != nil {
		return err
	}
	defer dk.Close()
	return f(dk)
}
