package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/netrewire"
)

// SentinelArg, as migrate-dst's first argument, runs it as a migration's
// sentinel (migrate-dst starts it itself), reading its plans from file
// descriptor 3. Its other argument is the Docker address ("" for the
// default).
const SentinelArg = "__sentinel"

// A sentinel stands in for a migrate-dst that dies while a copy it
// restored is not settled yet. migrate-dst undoes a failed migration
// itself (abandon); killed (SIGKILL, OOM), it cannot, and until it starts
// again nothing would stop the copy, which then runs beside the original
// that the source resumes: a post-copy copy on zero-filled memory (its
// lazy-pages daemon died with migrate-dst), a stop-and-copy copy whole.
// The sentinel, a process of its own session, sees migrate-dst's end as
// the end of its plan pipe, and if migrate-dst had not said the migration
// was settled it does at once what abandon would: a post-copy copy is
// taken off the network and killed, any other is paused. The restarted
// migrate-dst finishes the job from its records (recover).
type sentinelPlan struct {
	MigrationID string `json:"migration_id"`
	// Container is Docker's ID of the copy; "" for a process arrival.
	Container string `json:"container,omitempty"`
	// Lazy: post-copy, the copy cannot run without migrate-dst.
	Lazy bool `json:"lazy,omitempty"`
	// Armed: the copy's restore has begun; before, there is nothing to
	// stop.
	Armed bool `json:"armed,omitempty"`
	// Pid is the copy's first process once restored, with its start time.
	Pid      int    `json:"pid,omitempty"`
	PidStart uint64 `json:"pid_start,omitempty"`
	// Done: migrate-dst settled the migration itself.
	Done bool `json:"done,omitempty"`
	// RestoreTimeout bounds how long a restore under way is waited for.
	RestoreTimeout time.Duration `json:"restore_timeout,omitempty"`
}

// sentinelDirName holds the sentinels' logs under migrate-dst's work
// directory; the log of a sentinel that had nothing to do is removed.
const sentinelDirName = "sentinels"

// RunSentinel is the sentinel process: it reads plans from in until
// migrate-dst closes it, and acts if migrate-dst did not say it was done.
func RunSentinel(ctx context.Context, in io.Reader, dockerHost string, log *slog.Logger) error {
	p, ok := readPlans[sentinelPlan](in, log)
	if !ok || p.Done || !p.Armed {
		return nil
	}
	log.Warn("migrate-dst ended with a restored copy not settled: stopping the copy", "migration", p.MigrationID,
		"container", p.Container, "pid", p.Pid, "post-copy", p.Lazy)
	h := &realSentinelHost{dockerHost: dockerHost}
	defer h.close()
	did, err := settleCopy(ctx, h, p, sentinelPoll)
	log.Warn("sentinel done", "actions", strings.Join(did, "; "), "err", err)
	return err
}

// sentinelPoll is how often the sentinel looks at a copy whose restore is
// still under way.
const sentinelPoll = 50 * time.Millisecond

// copyState is what the sentinel sees of the copy.
type copyState struct {
	Running, Paused bool
	Pid             int
	Gone            bool // exited, dead or removed: nothing to do
}

// sentinelHost is what the sentinel does on this host: the seam at which
// settleCopy is tested with a fake as well as with the real daemons.
type sentinelHost interface {
	// state is the container's state as Docker sees it.
	state(ctx context.Context, id string) (copyState, error)
	// silence takes process pid's network namespace off the network.
	silence(pid int) error
	// kill kills process pid if it still is the one started at start (0:
	// any); a PID namespace's first process takes the namespace with it.
	kill(pid int, start uint64) error
	pause(ctx context.Context, id string) error
}

// settleCopy stops the copy that p describes and says what it did: a
// post-copy copy is silenced and killed at once if its process is known,
// then (and any copy whose restore was still running) watched through
// Docker until it is gone, or paused for a stop-and-copy one, until the
// restore's deadline.
func settleCopy(ctx context.Context, h sentinelHost, p sentinelPlan, poll time.Duration) ([]string, error) {
	var did []string
	stop := func(pid int, start uint64) {
		// A process arrival runs in this host's network namespace, which
		// must stay up; a container's copy has its own.
		if p.Container != "" {
			if err := h.silence(pid); err == nil {
				did = append(did, fmt.Sprintf("took pid %d's network namespace off the network", pid))
			}
		}
		if err := h.kill(pid, start); err == nil {
			did = append(did, fmt.Sprintf("killed pid %d", pid))
		}
	}
	if p.Lazy && p.Pid > 0 {
		stop(p.Pid, p.PidStart)
	}
	if p.Container == "" {
		if p.Pid == 0 {
			return did, errors.New("the restore had not reported its process: nothing to stop")
		}
		if !p.Lazy {
			if err := syscall.Kill(p.Pid, syscall.SIGSTOP); err == nil {
				did = append(did, fmt.Sprintf("stopped pid %d (SIGSTOP)", p.Pid))
			}
		}
		return did, nil
	}
	deadline := time.Now().Add(p.RestoreTimeout + time.Minute)
	for {
		st, err := h.state(ctx, p.Container)
		switch {
		case errors.Is(err, docker.ErrNotFound) || err == nil && st.Gone:
			return did, nil
		case err == nil && st.Paused:
			return append(did, "the copy is paused"), nil
		case err == nil && st.Running && p.Lazy:
			stop(st.Pid, 0)
		case err == nil && st.Running:
			if err := h.pause(ctx, p.Container); err != nil {
				return did, fmt.Errorf("pause the copy: %w", err)
			}
			return append(did, "paused the copy"), nil
		}
		if time.Now().After(deadline) {
			return did, fmt.Errorf("the copy did not end within the restore's deadline (last: %+v, %v)", st, err)
		}
		select {
		case <-ctx.Done():
			return did, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// realSentinelHost acts on this host. Docker is reached only once the
// copy's known process was stopped, which must not wait for it.
type realSentinelHost struct {
	dockerHost string
	dk         *docker.Client
}

func (h *realSentinelHost) docker() (*docker.Client, error) {
	if h.dk == nil {
		dk, err := docker.New(h.dockerHost)
		if err != nil {
			return nil, err
		}
		h.dk = dk
	}
	return h.dk, nil
}

func (h *realSentinelHost) close() {
	if h.dk != nil {
		h.dk.Close()
	}
}

func (h *realSentinelHost) state(ctx context.Context, id string) (copyState, error) {
	dk, err := h.docker()
	if err != nil {
		return copyState{}, err
	}
	r, err := dk.Inspect(ctx, id)
	if err != nil {
		return copyState{}, err
	}
	if r.State == nil {
		return copyState{}, errors.New("no state from Docker")
	}
	s := r.State
	return copyState{Running: s.Running, Paused: s.Paused, Pid: s.Pid,
		Gone: !s.Running && s.Status != "created" && s.Status != "restarting"}, nil
}

func (*realSentinelHost) silence(pid int) error {
	var self, its unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
		return err
	}
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &its); err != nil {
		return err
	}
	if self.Ino == its.Ino && self.Dev == its.Dev {
		return fmt.Errorf("pid %d is in this host's network namespace: left up", pid)
	}
	return netrewire.Silence(pid)
}

func (*realSentinelHost) kill(pid int, start uint64) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if start != 0 && startTime(pid) != start {
		return fmt.Errorf("pid %d is another process now", pid)
	}
	return unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
}

func (h *realSentinelHost) pause(ctx context.Context, id string) error {
	dk, err := h.docker()
	if err != nil {
		return err
	}
	return dk.Pause(ctx, id)
}

// sentinel is migrate-dst's handle on a migration's sentinel process.
type sentinel struct {
	mu      sync.Mutex
	w       *os.File
	plan    sentinelPlan
	logPath string
	log     *slog.Logger
}

// startSentinel runs bin (migrate-dst's own binary) as the sentinel of
// migration plan, in a session of its own so that a kill of migrate-dst's
// process group does not reach it. A nil sentinel (bin "") does nothing.
func startSentinel(bin, dockerHost, workDir string, plan sentinelPlan, log *slog.Logger) (*sentinel, error) {
	if bin == "" {
		return nil, nil
	}
	dir := filepath.Join(workDir, sentinelDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	pruneGuardRecords(dir, guardKeepFor, guardKeepCount)
	logPath := filepath.Join(dir, plan.MigrationID+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	r, w, err := os.Pipe() // close-on-exec: CRIU and Docker's children never hold it
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.Command(bin, SentinelArg, dockerHost)
	cmd.ExtraFiles = []*os.File{r} // fd 3
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("migrate: start the sentinel: %w", err)
	}
	go cmd.Wait()
	s := &sentinel{w: w, logPath: logPath, log: log}
	s.update(func(p *sentinelPlan) { *p = plan })
	return s, nil
}

// update changes the plan and sends it to the sentinel. One that cannot
// be told is logged: it acts on what it knew.
func (s *sentinel) update(change func(*sentinelPlan)) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w == nil {
		return
	}
	change(&s.plan)
	data, err := json.Marshal(s.plan)
	if err == nil {
		_, err = s.w.Write(append(data, '\n'))
	}
	if err != nil {
		s.log.Warn("sentinel", "err", err)
	}
}

// done tells the sentinel that migrate-dst settled the migration, and
// lets it go; later updates are ignored.
func (s *sentinel) done() {
	if s == nil {
		return
	}
	s.update(func(p *sentinelPlan) { p.Done = true })
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil {
		s.w.Close()
		s.w = nil
		os.Remove(s.logPath)
	}
}
