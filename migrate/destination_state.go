//go:build linux

package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/internal/reserve"
	"github.com/dockmove/dockmove/internal/restoreruntime"
)

func (s *Server) statePath(id string) string {
	return filepath.Join(s.stateDir(), id+".json")
}

// saveState records a migration's progress atomically.
func (s *Server) saveState(st *migrationState) error {
	st.Updated = time.Now().UTC()
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return writeFileAtomic(s.statePath(st.MigrationID), data)
}

func (s *Server) dropState(st *migrationState) {
	os.Remove(s.statePath(st.MigrationID))
}

// undoer is what undoing a migration needs from Docker: the seam at which
// the safety core (abandon: never two running copies, never none) is tested
// with a fake as well as with the real daemons.
type undoer interface {
	Pause(ctx context.Context, id string) error
	Inspect(ctx context.Context, nameOrID string) (container.InspectResponse, error)
	Remove(ctx context.Context, id string) error
	ContainersWithLabel(ctx context.Context, key string) (map[string]string, error)
	RemoveVolume(ctx context.Context, name string) error
	RemoveImage(ctx context.Context, id string) error
	Reserve(ctx context.Context, network, ip, ip6, image, holder, runtime string) (docker.Reservation, error)
	RemoveNetwork(ctx context.Context, name string) error
	SetRestartPolicy(ctx context.Context, id, name string, max int) error
}

// undo is the Docker abandon works with: the test's fake, or this host's.
func (s *Server) undo() undoer {
	if s.undoWith != nil {
		return s.undoWith
	}
	return s.dk
}

// abandon undoes a migration that failed. Before the restored copy was
// reported to the source, the source resumes its original, so everything
// made here goes. After it was reported but before the commit arrived, the
// source may have killed its original: the copy is paused, not removed, and
// left for the operator (never two running copies, never none saved).
func (s *Server) abandon(ctx context.Context, st *migrationState, cause error) {
	log := s.log.With("container", st.Name, "migration", st.MigrationID)
	if st.ProcessDir != "" {
		s.abandonProcess(st, cause, log)
		return
	}
	switch {
	case st.Phase == phaseComplete:
		// Every page arrived and the source's CRIU has killed the original:
		// only the commit message was lost. The copy is the container now.
		log.Warn("post-copy completed but the commit message was lost; keeping the container", "cause", cause)
		s.finalise(ctx, st, log)
		return
	case st.Phase == phaseRestored && st.Lazy:
		// Part of its memory is still on the source: it cannot continue.
		log.Error("post-copy failed: the restored container cannot continue without its memory; removing it", "cause", cause)
	case st.Phase == phaseRestored || st.Phase == phaseInDoubt:
		if err := s.undo().Pause(ctx, st.ContainerID); err != nil && !isPaused(ctx, s.undo(), st.ContainerID) {
			log.Error("in doubt: could not pause the restored copy", "err", err)
		}
		st.Phase = phaseInDoubt
		if err := s.saveState(st); err != nil {
			log.Error("in doubt: record", "err", err)
		}
		log.Error("in doubt: the source may have committed; the restored copy is paused until the source "+
			"resolves the migration (`migrate-dst status` lists it)", "cause", cause)
		return
	}
	// Docker not answering (restarting, say) must not leave the copy
	// behind: what it could not remove is kept on record and tried again
	// until it answers (later, or at the agent's next start).
	var unreachable error
	note := func(err error) {
		if unreachable == nil && docker.Unreachable(err) {
			unreachable = err
		}
	}
	shells, err := s.shellsOf(ctx, st)
	note(err)
	for _, id := range shells {
		if err := s.undo().Remove(ctx, id); err != nil {
			note(err)
			log.Error("cleanup: remove container", "err", err)
			continue
		}
		// Only once the container is gone: a runtime without its state
		// would start a shell that is left as a fresh container.
		if dir, err := restoreruntime.ContainerDir(s.cfg.RuntimeState, id); err == nil {
			restoreruntime.RemoveState(dir)
		}
	}
	for _, n := range st.Networks {
		if err := s.undo().RemoveNetwork(ctx, n); err != nil {
			note(err)
			log.Warn("cleanup: remove the network made for the container", "network", n, "err", err)
		}
	}
	if unreachable == nil {
		s.reserveAgain(ctx, st, log)
	}
	for _, v := range st.Volumes {
		if err := s.undo().RemoveVolume(ctx, v); err != nil {
			note(err)
			log.Warn("cleanup: remove volume", "volume", v, "err", err)
		}
	}
	if unreachable != nil {
		log.Warn("cleanup: Docker does not answer; the migration stays on record (migrate-dst status) and its cleanup "+
			"is tried again until Docker is back", "err", unreachable, "cause", cause)
		s.abandonLater(st, cause)
		return
	}
	for _, d := range st.BindDirs {
		if err := os.RemoveAll(d); err != nil {
			log.Warn("cleanup: remove a bind mount's directory", "dir", d, "err", err)
		}
	}
	if st.ImageLoaded != "" {
		if err := s.undo().RemoveImage(ctx, st.ImageLoaded); err != nil {
			log.Warn("cleanup: remove loaded image", "image", st.ImageLoaded, "err", err)
		}
	}
	st.removeStaging()
	s.dropState(st)
	log.Info("cleaned up after failed migration", "cause", cause)
}

// abandonLater tries abandon again, with a growing delay, until Docker
// answers or the agent stops (its next start recovers the migration).
func (s *Server) abandonLater(st *migrationState, cause error) {
	go func() {
		for delay := time.Second; ; delay = min(2*delay, 15*time.Second) {
			select {
			case <-s.closing():
				return
			case <-time.After(delay):
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_, err := s.undo().ContainersWithLabel(ctx, LabelMigration)
			if err == nil || !docker.Unreachable(err) {
				s.abandon(ctx, st, cause)
				cancel()
				return
			}
			cancel()
		}
	}()
}

// finalise makes a committed copy the container: it gets its restart
// policy, and what the migration no longer needs goes (with the restore
// runtime's state, so that the runtime never restores it again).
func (s *Server) finalise(ctx context.Context, st *migrationState, log *slog.Logger) {
	if st.Restart != "" && st.Restart != "no" {
		if err := s.undo().SetRestartPolicy(ctx, st.ContainerID, st.Restart, st.RestartMax); err != nil {
			log.Error("committed, but the container's restart policy could not be set: set it by hand "+
				"(docker update --restart)", "container", st.Name, "restart", st.Restart, "err", err)
		}
	}
	if dir, err := restoreruntime.ContainerDir(s.cfg.RuntimeState, st.ContainerID); err == nil {
		restoreruntime.RemoveState(dir)
	}
	st.removeStaging()
	s.dropState(st)
}

// reserveAgain makes again the reservations that made way for the
// container, which stays elsewhere.
func (s *Server) reserveAgain(ctx context.Context, st *migrationState, log *slog.Logger) {
	if len(st.Reservations) == 0 {
		return
	}
	holder, ierr := reserve.Install(filepath.Join(s.cfg.WorkDir, "reserve"))
	for _, r := range st.Reservations {
		err := ierr
		if err == nil {
			// This host runs the restore runtime (package reserve says why).
			_, err = s.undo().Reserve(ctx, r.Network, r.IPv4, r.IPv6, r.Image, holder, restoreruntime.Name)
		}
		if err != nil {
			log.Error("cleanup: reserve the container's address again: this host's Docker may hand it out while the container "+
				"answers for it elsewhere", "network", r.Network, "address", r.IPv4, "err", err)
		}
	}
}

// shellsOf lists the containers made for migration st: the one its state
// names, and any labelled with its ID (an agent killed while dockerd was
// creating the shell never learnt its ID, but dockerd went on).
func (s *Server) shellsOf(ctx context.Context, st *migrationState) ([]string, error) {
	var ids []string
	if st.ContainerID != "" {
		ids = append(ids, st.ContainerID)
	}
	labelled, err := s.undo().ContainersWithLabel(ctx, LabelMigration)
	if err != nil {
		s.log.Warn("cleanup: list the migration's containers", "err", err)
	}
	for id, migration := range labelled {
		if migration == st.MigrationID && id != st.ContainerID {
			ids = append(ids, id)
		}
	}
	return ids, err
}

// sentinelWait bounds how long a restarted agent waits for a migration's
// sentinel to finish stopping its copy.
const sentinelWait = 30 * time.Second

// recover finishes what a previous run of the agent left: migrations that
// never reached the restored phase are undone; in-doubt ones are paused.
func (s *Server) recover(ctx context.Context) {
	// Writes that a killed agent left half done: the state each was
	// replacing, if any, is the file that counts.
	removeHalfWritten(s.stateDir(), 0)
	ents, err := os.ReadDir(s.stateDir())
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.stateDir(), e.Name()))
		var st migrationState
		if err != nil || json.Unmarshal(data, &st) != nil || st.MigrationID+".json" != e.Name() {
			s.log.Warn("recover: unreadable state file", "file", e.Name())
			continue
		}
		if waitSentinel(s.cfg.WorkDir, st.MigrationID, sentinelWait) {
			s.log.Warn("recover: the migration's sentinel is still at work; going on", "migration", st.MigrationID)
		}
		s.abandon(ctx, &st, errAgentRestarted)
	}
	stale, _ := os.ReadDir(s.stagingDir())
	for _, e := range stale {
		os.RemoveAll(filepath.Join(s.stagingDir(), e.Name()))
	}
	if s.dk != nil {
		s.removeOrphanPlans(ctx)
	}
}

// removeOrphanPlans deletes restore runtime state of containers that no
// longer exist (a run killed between removing a container and its state).
func (s *Server) removeOrphanPlans(ctx context.Context) {
	ents, _ := os.ReadDir(s.cfg.RuntimeState)
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if _, err := s.dk.Inspect(ctx, e.Name()); errors.Is(err, docker.ErrNotFound) {
			restoreruntime.RemoveState(filepath.Join(s.cfg.RuntimeState, e.Name()))
			s.log.Info("recover: removed restore state of a vanished container", "id", e.Name())
		}
	}
}

func isPaused(ctx context.Context, dk undoer, id string) bool {
	r, err := dk.Inspect(ctx, id)
	return err == nil && r.State != nil && r.State.Paused
}

// stateDirOf is where a destination with work directory workDir keeps the
// state of its migrations.
func stateDirOf(workDir string) string { return filepath.Join(workDir, "migrations") }

// InFlight is a migration this destination holds state for: one under way,
// or one in doubt (its copy paused until the source resolves it).
type InFlight struct {
	MigrationID string    `json:"migration_id"`
	Name        string    `json:"name"`
	Phase       string    `json:"phase"`
	InDoubt     bool      `json:"in_doubt"`
	ContainerID string    `json:"container_id,omitempty"`
	Pid         int       `json:"pid,omitempty"`
	Updated     time.Time `json:"updated"`
	Source      string    `json:"source,omitempty"` // the source's certificate name
}

// DestinationStatus lists the migrations a destination with work directory
// workDir holds state for.
func DestinationStatus(workDir string) ([]InFlight, error) {
	dir := stateDirOf(workDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var out []InFlight
	for _, e := range ents {
		var st migrationState
		data, rerr := os.ReadFile(filepath.Join(dir, e.Name()))
		if rerr != nil || json.Unmarshal(data, &st) != nil || st.MigrationID+".json" != e.Name() {
			continue
		}
		out = append(out, InFlight{MigrationID: st.MigrationID, Name: st.Name, Phase: st.Phase, ContainerID: st.ContainerID, Pid: st.Pid,
			InDoubt: st.Phase == phaseInDoubt, Updated: st.Updated, Source: st.Source})
	}
	return out, err
}

// removeStaging deletes the migration's staging directories.
func (st *migrationState) removeStaging() {
	for _, dir := range []string{st.Staging, st.RootfsStaging} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
}

// inDoubtFrom lists the migrations from the source whose certificate
// proves peer that this host holds in doubt (transfer.Config.InDoubtFor):
// the source is asked for their outcomes in the handshake.
func (s *Server) inDoubtFrom(peer string) []string {
	if peer == "" {
		return nil
	}
	all, _ := DestinationStatus(s.cfg.WorkDir)
	var ids []string
	for _, m := range all {
		if m.InDoubt && m.Source == peer {
			ids = append(ids, m.MigrationID)
		}
	}
	return ids
}
