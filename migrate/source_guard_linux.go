//go:build linux

package migrate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/internal/atomicfile"
	"github.com/dockmove/dockmove/internal/criu"
	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/lazypages"
	"github.com/dockmove/dockmove/netrewire"
	"github.com/dockmove/dockmove/transfer"
)

// GuardFlag is the hidden flag that makes migrate-src run as a guard,
// reading its plans from file descriptor 3.
const GuardFlag = "guard"

// guardDirName is the directory, under the source's work directory, that
// holds the guards' logs and the results of their interventions.
const guardDirName = "guards"

// RunGuard is the guard process: it reads plans from in until migrate-src
// closes it, and if migrate-src did not say it was done, puts the host
// right and records what it did in workDir/guards/ID.json. lock, if not
// nil, is migrate-src's lock on the container, held until the guard ends;
// tc reaches the destination when it must be told the outcome.
func RunGuard(ctx context.Context, in io.Reader, lock *os.File, workDir string, tc transfer.Config, log *slog.Logger) (*GuardResult, error) {
	p, ok := readPlans[guardPlan](in, log)
	if !ok {
		return nil, errGuardNoPlan
	}
	if p.Done {
		return nil, nil
	}
	if lock != nil {
		if err := writeHolder(lock, lockHolder{Pid: os.Getpid(), Role: roleGuard, Since: time.Now()}); err != nil {
			log.Warn("guard: lock", "err", err)
		}
	}
	log.Warn("migrate-src ended in the middle of a migration: putting this host right", "migration", p.MigrationID, "container", p.Container, "pid", p.Pid)
	r := resolve(ctx, realGuardHost{log: log, tc: tc, workDir: workDir}, p, defaultGuardTimes())
	log.Warn("guard done", "outcome", r.Outcome, "actions", strings.Join(r.Actions, "; "), "errors", strings.Join(r.Errors, "; "))
	data, err := json.MarshalIndent(r, "", "  ")
	if err == nil {
		err = writeFileAtomic(filepath.Join(workDir, guardDirName, p.MigrationID+".json"), data)
	}
	sweepStale(workDir, log)
	return &r, err
}

// guard is the source's handle on its guard process.
type guard struct {
	mu      sync.Mutex
	w       *os.File
	plan    guardPlan
	logPath string
	log     *slog.Logger
}

// startGuard runs bin (migrate-src's own binary) as this migration's
// guard, in a session of its own so that neither a terminal's signals nor
// a kill of migrate-src's process group reach it.
func startGuard(bin string, args []string, workDir string, lock *os.File, plan guardPlan, log *slog.Logger) (*guard, error) {
	dir := filepath.Join(workDir, guardDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	pruneGuardRecords(dir, guardKeepFor, guardKeepCount)
	// Other migrations may be writing here now: only what has not changed
	// for a minute is left over.
	for _, d := range []string{workDir, dir, filepath.Join(workDir, outcomesDirName)} {
		removeHalfWritten(d, time.Minute)
	}
	logPath := filepath.Join(dir, plan.MigrationID+".log")
	w, err := startWatcher(logPath, bin, append([]string{"--" + GuardFlag, "--work-dir", workDir}, args...), lock)
	if err != nil {
		return nil, fmt.Errorf("migrate: start the guard: %w", err)
	}
	g := &guard{w: w, logPath: logPath, log: log}
	return g, g.update(func(p *guardPlan) { *p = plan })
}

// startWatcher runs bin with args as a watcher of a migration (the
// source's guard, the destination's sentinel): in a session of its own,
// so that neither a terminal's signals nor a kill of this process's group
// reach it, logging to logPath, reading its plans from file descriptor 3
// (extra, if not nil, is its descriptor 4). It returns the plans' pipe;
// the watcher acts when it ends without a plan that says done.
func startWatcher(logPath, bin string, args []string, extra *os.File) (*os.File, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	r, w, err := os.Pipe() // close-on-exec: CRIU, Docker and their children never hold it
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.Command(bin, args...)
	cmd.ExtraFiles = []*os.File{r} // fd 3
	if extra != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, extra) // fd 4
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, err
	}
	go cmd.Wait()
	return w, nil
}

// update changes the plan and sends it to the guard.
func (g *guard) update(change func(*guardPlan)) error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	change(&g.plan)
	data, err := json.Marshal(g.plan)
	if err != nil {
		return err
	}
	if _, err := g.w.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("migrate: guard: %w", err)
	}
	return nil
}

// done tells the guard that migrate-src finished by itself, and lets it go.
func (g *guard) done() {
	if g == nil {
		return
	}
	if err := g.update(func(p *guardPlan) { p.Done = true }); err != nil {
		g.log.Warn("guard", "err", err)
	}
	g.w.Close()
	os.Remove(g.logPath)
}

// criuChild finds the CRIU process this process started (go-criu's swrk
// child) to dump into images: the guard waits for it, the watchdog ends it.
// Several dumps may run at once (a drain), so a CRIU child is this dump's
// only if it holds images, or a file in it, open: the first child named
// criu could be another migration's (it was: its exit failed this one).
func criuChild(images string) int {
	if real, err := filepath.EvalSymlinks(images); err == nil {
		images = real
	}
	self := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || parentPID(pid) != self {
			continue
		}
		if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "criu" && holdsOpen(pid, images) {
			return pid
		}
	}
	return 0
}

// holdsOpen reports whether process pid has dir, or a file in it, open.
func holdsOpen(pid int, dir string) bool {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, _ := os.ReadDir(fdDir)
	for _, fd := range fds {
		if t, err := os.Readlink(filepath.Join(fdDir, fd.Name())); err == nil && (t == dir || strings.HasPrefix(t, dir+"/")) {
			return true
		}
	}
	return false
}

// guardDeliverFor bounds how long a guard tries to tell the destination
// the outcome; after that `migrate-src status --resolve` does.
const guardDeliverFor = 10 * time.Minute

// realGuardHost acts on this host.
type realGuardHost struct {
	log     *slog.Logger
	tc      transfer.Config
	workDir string
}

func (h realGuardHost) deliver(ctx context.Context, p guardPlan, commit bool) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, guardDeliverFor)
	defer cancel()
	tc := h.tc
	tc.Hello = transfer.Hello{Role: transfer.RoleSource, Agent: Version, CRIU: transfer.CRIUInfo{Version: p.CRIUVersion}}
	return deliverOutcome(ctx, p.Destination, tc, p.MigrationID, commit, h.log)
}

func (h realGuardHost) dropOutcome(p guardPlan) { dropOutcome(h.workDir, p.MigrationID) }

func (h realGuardHost) reserve(ctx context.Context, p guardPlan) error {
	return reserveMoved(ctx, h.workDir, p.outcome(), h.log)
}

func (h realGuardHost) unreserve(ctx context.Context, p guardPlan) error {
	return unreserveMoved(ctx, p.outcome())
}

func (h realGuardHost) recordRollback(p guardPlan) error {
	r := p.outcome()
	r.Decided, r.KeepSource = time.Now().UTC(), true
	return saveOutcome(h.workDir, r)
}

// outcome is the record of plan p's migration, undecided.
func (p guardPlan) outcome() OutcomeRecord {
	return OutcomeRecord{MigrationID: p.MigrationID, Container: p.Container, Destination: p.Destination,
		ContainerID: p.Container, Docker: p.Docker, Moved: p.Moved, Image: p.Image}
}

func (h realGuardHost) waitExit(ctx context.Context, pid int, d time.Duration) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return true // ESRCH: already gone
	}
	defer unix.Close(fd)
	ms := int(d.Milliseconds())
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0
	}
}

func (h realGuardHost) kill(pid int) { unix.Kill(pid, unix.SIGKILL) }

// alive: the root exists, is not a zombie, and is the same process (its
// start time matches) or, for a container, Docker still runs it.
func (h realGuardHost) alive(p guardPlan) bool {
	f := statFields(p.Pid)
	if len(f) == 0 || f[0] == "Z" || f[0] == "X" {
		return false
	}
	if p.Container == "" {
		return true
	}
	dk, err := docker.New(p.Docker)
	if err != nil {
		return true // the process runs; Docker's view is unknown
	}
	defer dk.Close()
	r, err := dk.Inspect(context.Background(), p.Container)
	return err != nil || (r.State != nil && r.State.Running && r.State.Pid == p.Pid)
}

func (h realGuardHost) thaw(dir string) error {
	state := filepath.Join(dir, "freezer.state")
	b, err := os.ReadFile(state)
	if err != nil || strings.TrimSpace(string(b)) == "THAWED" {
		return nil
	}
	h.log.Warn("thawing a frozen container", "cgroup", dir)
	return os.WriteFile(state, []byte("THAWED"), 0)
}

func (h realGuardHost) abortPageServer(addr string) { lazypages.Abort(addr) }

func (h realGuardHost) unlockNetwork(pid int) error { return criu.UnlockNetwork(pid) }

func (h realGuardHost) setRestart(ctx context.Context, p guardPlan) error {
	dk, err := docker.New(p.Docker)
	if err != nil {
		return err
	}
	defer dk.Close()
	return dk.SetRestartPolicy(ctx, p.Container, p.Restart.Name, p.Restart.Max)
}

func (h realGuardHost) announce(pid int, d time.Duration) error {
	gap := 500 * time.Millisecond
	_, err := netrewire.Announce(pid, int(d/gap)+1, gap)
	return err
}

func (h realGuardHost) remove(ctx context.Context, p guardPlan) error {
	dk, err := docker.New(p.Docker)
	if err != nil {
		return err
	}
	defer dk.Close()
	return dk.RemoveWithAnonymousVolumes(ctx, p.Container)
}

// tmpPrefix begins the name of a file writeFileAtomic is writing.
const tmpPrefix = atomicfile.TmpPrefix

// removeHalfWritten removes from dir what writeFileAtomic left of writes a
// kill cut short: temporary files unchanged for olderThan (0 where no
// writer can be at work).
func removeHalfWritten(dir string, olderThan time.Duration) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) >= olderThan {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// writeFileAtomic replaces path with data so that a crash leaves either
// the old or the new content (package atomicfile).
func writeFileAtomic(path string, data []byte) error { return atomicfile.Write(path, data, 0o600) }

// GuardResults lists what guards did on this host (WORK/guards/*.json).
func GuardResults(workDir string) []GuardResult {
	paths, _ := filepath.Glob(filepath.Join(workDir, guardDirName, "*.json"))
	var out []GuardResult
	for _, p := range paths {
		var r GuardResult
		if data, err := os.ReadFile(p); err == nil && json.Unmarshal(data, &r) == nil {
			out = append(out, r)
		}
	}
	return out
}
