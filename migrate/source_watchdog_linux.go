//go:build linux

package migrate

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/internal/criu"
)

var errDumpTimeout = errors.New("migrate: CRIU's dump did not finish in time")

// dumpWatchdog ends a dump that outlives its deadline: a task CRIU cannot
// seize (one stopped after the check before freezing, one in an
// uninterruptible sleep) makes it wait forever with the container frozen.
type dumpWatchdog struct {
	pid   int
	timer *time.Timer
	fired atomic.Bool
}

var errCRIUDied = errors.New("migrate: CRIU ended during the dump")

// criu is the watched CRIU's PID (0 if none).
func (w *dumpWatchdog) criu() int {
	if w == nil {
		return 0
	}
	return w.pid
}

// contextUntilExit returns a context cancelled with cause when process pid
// ends (never for pid 0), and a function that stops watching.
func contextUntilExit(ctx context.Context, pid int, cause error) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	if pid == 0 {
		return ctx, func() { cancel(nil) }
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		cancel(cause) // already gone
		return ctx, func() {}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n, _ := unix.Poll(fds, 100); n > 0 {
				cancel(cause)
				return
			}
		}
	}()
	return ctx, func() { close(stop); <-done; cancel(nil) }
}

// watchDump starts the deadline for the dump by CRIU process criuPid of
// the tree in spec. Nil-safe: a zero pid is not watched.
func watchDump(criuPid int, spec criu.DumpSpec, d time.Duration, log *slog.Logger) *dumpWatchdog {
	if criuPid == 0 || d <= 0 {
		return nil
	}
	w := &dumpWatchdog{pid: criuPid}
	w.timer = time.AfterFunc(d, func() {
		w.fired.Store(true)
		log.Error("CRIU's dump outlived its deadline: stopping it and thawing the container", "criu", criuPid, "after", d)
		stopCRIU(criuPid, spec, log)
	})
	return w
}

// stopCRIU kills CRIU process pid (0: none found) dumping the tree of
// spec, thaws the tree's freezer (with cgroup v2 CRIU freezes by ptrace,
// which its death undoes) and removes the network lock it leaves.
func stopCRIU(pid int, spec criu.DumpSpec, log *slog.Logger) {
	if pid != 0 {
		unix.Kill(pid, unix.SIGKILL)
	}
	if spec.FreezeCgroup != "" {
		os.WriteFile(filepath.Join(spec.FreezeCgroup, "freezer.state"), []byte("THAWED"), 0)
	}
	if err := criu.UnlockNetwork(spec.Pid); err != nil {
		log.Error("the container's network is still locked", "err", err)
	}
}

// watchPreDump puts a deadline d on the pre-dump that CRIU makes into dir
// (predump.Config.Watch). A pre-dump announces nothing, so CRIU is found
// when the deadline passes: the child of this process that has dir open.
func watchPreDump(dir string, spec criu.DumpSpec, d time.Duration, log *slog.Logger) (expired func() bool) {
	stopped := make(chan struct{})
	t := time.AfterFunc(d, func() {
		defer close(stopped)
		pid := criuChild(dir)
		log.Error("CRIU's pre-dump outlived its deadline: stopping it and thawing the container", "criu", pid, "after", d)
		stopCRIU(pid, spec, log)
	})
	return func() bool {
		if t.Stop() {
			return false
		}
		<-stopped // it fired: done with this pre-dump before anything goes on
		return true
	}
}

// stop ends the watch and reports whether the deadline had fired.
func (w *dumpWatchdog) stop() bool {
	if w == nil {
		return false
	}
	w.timer.Stop()
	return w.fired.Load()
}
