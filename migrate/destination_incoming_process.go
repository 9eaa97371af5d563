//go:build linux

package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/dockmove/dockmove/internal/criu"
	"github.com/dockmove/dockmove/lazypages"
	"github.com/dockmove/dockmove/protocol"
)

// processArrival is a plain process tree (migrate-src --pid), restored
// with CRIU on this host outside any container. Only a destination started
// with --allow-processes accepts one.
type processArrival struct {
	in  *incoming
	dir string // the migration's directory: rounds, images, CRIU's work
}

func (p *processArrival) accept(context.Context) (*protocol.PreflightOK, func(), error) {
	in := p.in
	if !in.srv.cfg.AllowProcesses {
		return nil, nil, refuseFor(RefusalPolicy, errors.New("this destination does not restore plain processes (start migrate-dst with --allow-processes)"))
	}
	if err := in.checkStrategy(); err != nil {
		return nil, nil, refuseFor(RefusalUnsupported, err)
	}
	if err := checkDisk([]diskNeed{{in.srv.processDir(), in.pre.Sizes.Memory}}, statfsInfo); err != nil {
		return nil, nil, refuseFor(RefusalDisk, err)
	}
	p.dir = filepath.Join(in.srv.processDir(), in.pre.MigrationID)
	if _, err := os.Lstat(p.dir); !os.IsNotExist(err) {
		return nil, nil, refuseFor(RefusalConflict, fmt.Errorf("migration %s: %s exists already", in.pre.MigrationID, p.dir))
	}
	// The state owns the directory, made next: undone with the migration.
	in.state = migrationState{MigrationID: in.pre.MigrationID, Name: "process " + in.pre.Process.Name, Phase: phasePrepared, ProcessDir: p.dir}
	return &protocol.PreflightOK{RestoreMillis: in.srv.lastRestore.Load()}, func() {}, nil
}

func (p *processArrival) prepare(context.Context) (string, error) {
	if err := os.Mkdir(p.dir, 0o700); err != nil {
		return "", fmt.Errorf("migration %s: %w", p.in.pre.MigrationID, err)
	}
	return p.dir, nil
}

func (p *processArrival) receive(ctx context.Context) error {
	images := filepath.Join(p.dir, imagesDir)
	if err := p.in.receiveBounded(ctx, protocol.StreamImages, images, imagePolicy(), p.in.pre.Sizes.Memory); err != nil {
		return err
	}
	return linkParent(images, p.in.rounds)
}

func (p *processArrival) restore(ctx context.Context) error {
	in := p.in
	images, work := filepath.Join(p.dir, imagesDir), filepath.Join(p.dir, "work")
	r := criu.ProcessRestore{ImagesDir: images, WorkDir: work, Lazy: in.pre.Strategy.PostCopy()}
	if r.Lazy {
		if err := os.MkdirAll(work, 0o700); err != nil {
			return err
		}
		d, err := lazypages.Start(ctx, in.sess, in.srv.cfg.CRIU, images, work, in.log)
		if err != nil {
			return err
		}
		in.pages = d
		in.state.Lazy = true
	}
	in.steps.mark("prepare")
	start := time.Now()
	in.sentinel.update(func(p *sentinelPlan) { p.Armed = true })
	pid, err := r.Restore(in.srv.cfg.CRIU)
	took := time.Since(start)
	in.steps.mark("criu-restore")
	if err != nil {
		return err
	}
	in.srv.lastRestore.Store(took.Milliseconds())
	in.state.Pid, in.state.PidStart = pid, startTime(pid)
	in.sentinel.update(func(p *sentinelPlan) { p.Pid, p.PidStart = pid, in.state.PidStart })
	if err := in.recordRestored(); err != nil {
		return err
	}
	in.requirePages(pid, in.state.PidStart)
	in.log.Info("process restored", "name", in.pre.Process.Name, "pid", pid, "took", took)
	msg := &protocol.Restored{Pid: pid, RestoreMillis: took.Milliseconds()}
	// CRIU writes its statistics in its work directory.
	if st, ok := criu.RestoreStatsOf(work); ok {
		msg.PagesRestored, msg.ForkingMicros, msg.RestoreMicros = st.PagesRestored, st.ForkingMicros, st.RestoreMicros
	}
	in.steps.mark("record")
	msg.Steps = in.steps.steps
	return in.sess.Send(ctx, msg)
}

// abandonProcess undoes a failed process migration, with the container
// rules of abandon: removed before it was reported restored, or when its
// memory is still on the source; stopped (SIGSTOP) and left to the
// operator when the source may have committed.
func (s *Server) abandonProcess(st *migrationState, cause error, log *slog.Logger) {
	alive := st.Pid > 0 && startTime(st.Pid) == st.PidStart
	switch {
	case st.Phase == phaseComplete:
		log.Warn("post-copy completed but the commit message was lost; keeping the process", "pid", st.Pid, "cause", cause)
	case (st.Phase == phaseRestored || st.Phase == phaseInDoubt) && !st.Lazy:
		if alive {
			syscall.Kill(st.Pid, syscall.SIGSTOP)
		}
		st.Phase = phaseInDoubt
		if err := s.saveState(st); err != nil {
			log.Error("in doubt: record", "err", err)
		}
		log.Error("in doubt: the source may have committed; the restored process is stopped until the source "+
			"resolves the migration (`migrate-dst status` lists it)", "pid", st.Pid, "cause", cause)
		return // the state stays for the source's resolve
	default:
		if alive {
			// A PID namespace's init takes the whole namespace with it.
			syscall.Kill(st.Pid, syscall.SIGKILL)
		}
		log.Info("cleaned up after failed process migration", "cause", cause)
	}
	os.RemoveAll(st.ProcessDir)
	s.dropState(st)
}

// startTime is pid's start time in clock ticks since boot (0 if it is
// gone): with the PID, it identifies a process across PID reuse.
// runsStill returns a check that process pid, started at start, still
// runs (a zombie has ended): the condition of a post-copy's end
// (lazypages.Daemon.Require).
func runsStill(pid int, start uint64) func() error {
	return func() error {
		f := statFields(pid)
		if len(f) < 20 || f[0] == "Z" || f[0] == "X" || startTime(pid) != start {
			return fmt.Errorf("the restored process (pid %d) ended during post-copy, with part of its memory still on the source", pid)
		}
		return nil
	}
}

func startTime(pid int) uint64 {
	f := statFields(pid)
	// Field 22 of stat; statFields starts at field 3.
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}
