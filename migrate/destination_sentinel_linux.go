package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
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
// descriptor 3. Its other arguments: the Docker address ("" for the
// default), and the lock it holds while it lives (sentinelLock).
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
	// Log is the sentinel's log, removed if it had nothing to do.
	Log string `json:"log,omitempty"`
}

// sentinelDirName holds the sentinels' logs under migrate-dst's work
// directory; the log of a sentinel that had nothing to do is removed.
const sentinelDirName = "sentinels"

// RunSentinel is the sentinel process: it reads plans from in until
// migrate-dst closes it, and acts if migrate-dst did not say it was done.
// It holds lockPath (if not "") locked until it returns: a restarted
// migrate-dst waits for it before it acts on the migration itself.
func RunSentinel(ctx context.Context, in io.Reader, dockerHost, lockPath string, log *slog.Logger) error {
	if lockPath != "" {
		lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
		if err == nil {
			err = unix.Flock(int(lock.Fd()), unix.LOCK_EX)
		}
		if err != nil {
			log.Error("sentinel: lock", "err", err)
		} else {
			defer lock.Close()
			defer os.Remove(lockPath) // before the close lets a waiter in
		}
	}
	p, ok := readPlans[sentinelPlan](in, log)
	if !ok || p.Done || !p.Armed {
		if p.Log != "" {
			os.Remove(p.Log)
		}
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
	PidStart        uint64 // Pid's start time, read as Docker named it
	Gone            bool   // exited, dead or removed: nothing to do
}

// sentinelHost is what the sentinel does on this host: the seam at which
// settleCopy is tested with a fake as well as with the real daemons.
// Processes are named by PID and start time: an action on a PID that is
// now another process's is refused.
type sentinelHost interface {
	// state is the container's state as Docker sees it.
	state(ctx context.Context, id string) (copyState, error)
	// silence takes process pid's network namespace off the network,
	// never this host's own.
	silence(pid int, start uint64) error
	// signal sends sig to process pid; SIGKILL to a PID namespace's
	// first process takes the namespace with it.
	signal(pid int, start uint64, sig syscall.Signal) error
	pause(ctx context.Context, id string) error
}

// settleCopy stops the copy that p describes and says what it did: a
// post-copy copy is silenced and killed at once if its process is known,
// then (and any copy whose restore was still running) watched through
// Docker until it is gone, or paused for a stop-and-copy one, until the
// restore's deadline. What fails is tried again until then.
func settleCopy(ctx context.Context, h sentinelHost, p sentinelPlan, poll time.Duration) ([]string, error) {
	var did []string
	stop := func(pid int, start uint64) {
		// A process arrival runs in this host's network namespace, which
		// must stay up; a container's copy has its own.
		if p.Container != "" {
			if err := h.silence(pid, start); err == nil {
				did = append(did, fmt.Sprintf("took pid %d's network namespace off the network", pid))
			}
		}
		if err := h.signal(pid, start, syscall.SIGKILL); err == nil {
			did = append(did, fmt.Sprintf("killed pid %d", pid))
		}
	}
	if p.Lazy && p.Pid > 0 {
		stop(p.Pid, p.PidStart)
	}
	if p.Container == "" {
		switch {
		case p.Pid == 0:
			return did, errors.New("the restore had not reported its process: nothing to stop")
		case !p.Lazy:
			if err := h.signal(p.Pid, p.PidStart, syscall.SIGSTOP); err != nil {
				return did, fmt.Errorf("stop pid %d: %w", p.Pid, err)
			}
			did = append(did, fmt.Sprintf("stopped pid %d (SIGSTOP)", p.Pid))
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
			stop(st.Pid, st.PidStart)
		case err == nil && st.Running:
			if err = h.pause(ctx, p.Container); err == nil {
				return append(did, "paused the copy"), nil
			}
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
	st := copyState{Running: s.Running, Paused: s.Paused, Pid: s.Pid,
		Gone: !s.Running && s.Status != "created" && s.Status != "restarting"}
	if s.Pid > 0 {
		st.PidStart = startTime(s.Pid)
	}
	return st, nil
}

// isProcess checks that pid is still the process started at start (0:
// unknown, refused).
func isProcess(pid int, start uint64) error {
	if start == 0 || startTime(pid) != start {
		return fmt.Errorf("pid %d is not the copy's process (any more)", pid)
	}
	return nil
}

func (*realSentinelHost) silence(pid int, start uint64) error {
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return err
	}
	defer ns.Close()
	// Checked after the open: the file is the process's namespace.
	if err := isProcess(pid, start); err != nil {
		return err
	}
	var its unix.Stat_t
	if err := unix.Fstat(int(ns.Fd()), &its); err != nil {
		return err
	}
	for _, host := range []string{"/proc/self/ns/net", "/proc/1/ns/net"} {
		var st unix.Stat_t
		if err := unix.Stat(host, &st); err != nil {
			return err
		}
		if st.Ino == its.Ino && st.Dev == its.Dev {
			return fmt.Errorf("pid %d is in this host's network namespace: left up", pid)
		}
	}
	return netrewire.SilenceNetns(ns)
}

func (*realSentinelHost) signal(pid int, start uint64, sig syscall.Signal) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// Checked after the open: the pidfd is the process's.
	if err := isProcess(pid, start); err != nil {
		return err
	}
	return unix.PidfdSendSignal(fd, sig, nil, 0)
}

func (h *realSentinelHost) pause(ctx context.Context, id string) error {
	dk, err := h.docker()
	if err != nil {
		return err
	}
	return dk.Pause(ctx, id)
}

// sentinelLock is the file a migration's sentinel holds locked while it
// lives.
func sentinelLock(workDir, id string) string {
	return filepath.Join(workDir, sentinelDirName, id+".lock")
}

// waitSentinel waits, for at most within, for the sentinel of migration id
// to end: a migrate-dst that starts again after it died lets the sentinel
// finish stopping the copy before it acts on the migration itself (else
// a sentinel still at work could pause a copy just resolved). It reports
// whether the sentinel is still at work.
func waitSentinel(workDir, id string, within time.Duration) (busy bool) {
	f, err := os.Open(sentinelLock(workDir, id))
	if err != nil {
		return false // no sentinel, or one that has ended
	}
	defer f.Close()
	deadline := time.Now().Add(within)
	for {
		if unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB) == nil {
			return false
		}
		if time.Now().After(deadline) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
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
	w, err := startWatcher(logPath, bin, []string{SentinelArg, dockerHost, sentinelLock(workDir, plan.MigrationID)}, nil)
	if err != nil {
		return nil, fmt.Errorf("migrate: start the sentinel: %w", err)
	}
	plan.Log = logPath
	s := &sentinel{w: w, logPath: logPath, log: log, plan: plan}
	if err := s.send(); err != nil {
		s.done()
		return nil, fmt.Errorf("migrate: the sentinel: %w", err)
	}
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
	if err := s.send(); err != nil {
		s.log.Warn("sentinel", "err", err)
	}
}

// send writes the plan to the sentinel; s.mu is held, or s is not shared
// yet.
func (s *sentinel) send() error {
	data, err := json.Marshal(s.plan)
	if err == nil {
		_, err = s.w.Write(append(data, '\n'))
	}
	return err
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
