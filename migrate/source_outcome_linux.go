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
		// What happened decides, not what was decided: an original that
		// runs was resumed by CRIU, and the destination's copy must go.
		commit := r.Commit && !originalRunning(ctx, r)
		state, err := deliverOutcome(ctx, r.Destination, tc, r.MigrationID, commit, log)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		said[r.MigrationID] = state
		if commit && state == protocol.OutcomeRemoved {
			log.Error("the destination no longer has its copy: the ended original is kept here to be started again", "migration", r.MigrationID, "container", r.Container)
		}
		if commit && (state == protocol.OutcomeCommitted || state == protocol.OutcomeUnknown) {
			if err := removeOriginal(ctx, r); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		dropOutcome(workDir, r.MigrationID)
	}
	return said, errors.Join(errs...)
}

func originalRunning(ctx context.Context, r OutcomeRecord) bool {
	if r.ContainerID == "" {
		return false
	}
	dk, err := docker.New(r.Docker)
	if err != nil {
		return false
	}
	defer dk.Close()
	c, err := dk.Inspect(ctx, r.ContainerID)
	return err == nil && c.State != nil && c.State.Running
}

// removeOriginal removes the ended original of a committed migration,
// unless it was to be kept.
func removeOriginal(ctx context.Context, r OutcomeRecord) error {
	if r.ContainerID == "" || r.KeepSource {
		return nil
	}
	dk, err := docker.New(r.Docker)
	if err != nil {
		return err
	}
	defer dk.Close()
	return dk.Remove(ctx, r.ContainerID)
}
