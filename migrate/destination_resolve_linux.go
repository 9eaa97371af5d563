//go:build linux

package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

// A migration is in doubt on the destination when its session broke after
// the copy was reported restored and before the commit arrived: the copy
// is paused (a process: stopped) and its state kept, until the source
// resolves it in a session of its own (protocol.Resolve, spec.md).

var (
	errResolvedBySource = errors.New("the source resolved the migration: its original runs there")
	errCopyGone         = errors.New("the copy in doubt is gone")
)

// serveResolve answers a source's Resolve.
func (s *Server) serveResolve(ctx context.Context, sess *transfer.Session, r *protocol.Resolve, log *slog.Logger) {
	log = log.With("migration", r.MigrationID, "commit", r.Commit)
	state, err := s.resolve(ctx, r, sess.PeerName(), log)
	if err != nil {
		log.Error("resolve", "err", err)
		sess.Send(ctx, &transfer.Reject{Reason: err.Error()})
		sess.Close()
		return
	}
	log.Info("resolved", "outcome", state)
	if err := sess.Send(ctx, &protocol.Outcome{State: state}); err != nil {
		log.Warn("resolve: the outcome may not have reached the source", "err", err)
	}
	sess.Close()
}

// resolve applies the word of the source whose certificate proves peer on
// migration r.MigrationID: only the source that started it may settle it.
func (s *Server) resolve(ctx context.Context, r *protocol.Resolve, peer string, log *slog.Logger) (string, error) {
	if !s.setActive(r.MigrationID, true) {
		// Its own session is still live here: it will end in doubt, or
		// complete, before long.
		return protocol.OutcomePending, nil
	}
	defer s.setActive(r.MigrationID, false)
	st, err := s.loadState(r.MigrationID)
	if errors.Is(err, os.ErrNotExist) {
		return protocol.OutcomeUnknown, nil
	}
	if err != nil {
		return "", err
	}
	if st.Source != "" && st.Source != peer {
		return "", fmt.Errorf("migration %s came from %s, not from %s: only its source settles it", r.MigrationID, st.Source, peer)
	}
	if !r.Commit || st.Phase == phasePrepared {
		if r.Commit {
			log.Error("the source committed a migration whose copy was never restored here; removing what is left")
		}
		st.Phase = phasePrepared // nothing here is the container: all of it goes
		s.abandon(ctx, &st, errResolvedBySource)
		return protocol.OutcomeRemoved, nil
	}
	switch err := s.commitInDoubt(ctx, &st, log); {
	case errors.Is(err, errCopyGone):
		return protocol.OutcomeRemoved, nil
	case err != nil:
		return "", err
	}
	return protocol.OutcomeCommitted, nil
}

// commitInDoubt resumes a paused copy whose original is gone, and
// finalises it as a commit does.
func (s *Server) commitInDoubt(ctx context.Context, st *migrationState, log *slog.Logger) error {
	if st.ProcessDir != "" {
		if st.Pid > 0 && startTime(st.Pid) == st.PidStart {
			syscall.Kill(st.Pid, syscall.SIGCONT)
		} else {
			log.Error("the committed process is gone from this host", "pid", st.Pid)
		}
		os.RemoveAll(st.ProcessDir)
		s.dropState(st)
		return nil
	}
	if s.dk == nil {
		return errors.New("no Docker here to resume the container")
	}
	if err := s.dk.Unpause(ctx, st.ContainerID); errors.Is(err, docker.ErrNotFound) {
		log.Error("the source committed, but the copy in doubt was removed here by hand", "container", st.Name)
		s.dropState(st)
		return errCopyGone
	} else if err != nil {
		return fmt.Errorf("resume the committed copy: %w", err)
	}
	s.finalise(ctx, st, log)
	log.Info("in-doubt copy committed by the source: running", "container", st.Name)
	return nil
}

func (s *Server) loadState(id string) (migrationState, error) {
	var st migrationState
	data, err := os.ReadFile(s.statePath(id))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil || st.MigrationID != id {
		return st, fmt.Errorf("state of migration %s is unreadable", id)
	}
	return st, nil
}
