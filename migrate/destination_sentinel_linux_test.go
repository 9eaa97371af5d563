package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/internal/docker"
)

// fakeSentinelHost scripts the copy's states as Docker reports them, one
// per look (the last repeats), and records what the sentinel did.
type fakeSentinelHost struct {
	states     []copyState
	err        error // every look fails with it (docker.ErrNotFound: removed)
	pauseFails int   // pauses that fail before one succeeds
	calls      []string
}

func (f *fakeSentinelHost) state(context.Context, string) (copyState, error) {
	f.calls = append(f.calls, "look")
	if f.err != nil {
		return copyState{}, f.err
	}
	st := f.states[0]
	if len(f.states) > 1 {
		f.states = f.states[1:]
	}
	return st, nil
}
func (f *fakeSentinelHost) silence(int, uint64) error {
	f.calls = append(f.calls, "silence")
	return nil
}
func (f *fakeSentinelHost) signal(_ int, _ uint64, sig syscall.Signal) error {
	if sig == syscall.SIGSTOP {
		f.calls = append(f.calls, "sigstop")
		return nil
	}
	f.calls = append(f.calls, "kill")
	// Killed, Docker sees the copy end.
	f.states = []copyState{{Gone: true}}
	return nil
}
func (f *fakeSentinelHost) pause(context.Context, string) error {
	f.calls = append(f.calls, "pause")
	if f.pauseFails > 0 {
		f.pauseFails--
		return errors.New("Docker is busy")
	}
	f.states = []copyState{{Running: true, Paused: true}}
	return nil
}

func TestSentinelSettlesTheCopyWithFakeHost(t *testing.T) {
	running := copyState{Running: true, Pid: 42}
	restoring := copyState{} // "created": the restore runs
	for _, tt := range []struct {
		name       string
		plan       sentinelPlan
		states     []copyState
		err        error
		pauseFails int
		want       []string
	}{
		{"post-copy copy with its process known: off the network and killed before Docker is asked",
			sentinelPlan{Container: "c", Lazy: true, Pid: 42}, []copyState{running}, nil, 0,
			[]string{"silence", "kill", "look"}},
		{"post-copy copy still restoring: waited for, then stopped",
			sentinelPlan{Container: "c", Lazy: true}, []copyState{restoring, restoring, running}, nil, 0,
			[]string{"look", "look", "look", "silence", "kill", "look"}},
		{"post-copy restore that failed: nothing to stop",
			sentinelPlan{Container: "c", Lazy: true}, []copyState{restoring, {Gone: true}}, nil, 0,
			[]string{"look", "look"}},
		{"stop-and-copy copy: paused, never killed (the source may have committed)",
			sentinelPlan{Container: "c", Pid: 42}, []copyState{running}, nil, 0,
			[]string{"look", "pause"}},
		{"stop-and-copy copy that Docker cannot pause at first: tried again",
			sentinelPlan{Container: "c"}, []copyState{running}, nil, 2,
			[]string{"look", "pause", "look", "pause", "look", "pause"}},
		{"stop-and-copy copy still restoring: paused once it runs",
			sentinelPlan{Container: "c"}, []copyState{restoring, running}, nil, 0,
			[]string{"look", "look", "pause"}},
		{"a copy already paused is left so",
			sentinelPlan{Container: "c"}, []copyState{{Running: true, Paused: true}}, nil, 0,
			[]string{"look"}},
		{"a copy Docker no longer has: nothing to do",
			sentinelPlan{Container: "c", Lazy: true}, nil, docker.ErrNotFound, 0,
			[]string{"look"}},
		{"post-copy process arrival: killed, this host's network left alone",
			sentinelPlan{Lazy: true, Pid: 42}, nil, nil, 0,
			[]string{"kill"}},
		{"stop-and-copy process arrival: stopped (SIGSTOP), not killed",
			sentinelPlan{Pid: 42}, nil, nil, 0,
			[]string{"sigstop"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSentinelHost{states: tt.states, err: tt.err, pauseFails: tt.pauseFails}
			if f.states == nil {
				f.states = []copyState{{Gone: true}}
			}
			tt.plan.Armed = true
			did, err := settleCopy(context.Background(), f, tt.plan, time.Millisecond)
			if err != nil {
				t.Fatalf("settleCopy: %v (did %q)", err, did)
			}
			if !slices.Equal(f.calls, tt.want) {
				t.Fatalf("calls %q, want %q", f.calls, tt.want)
			}
		})
	}
}

func TestSentinelGivesUpAtTheRestoreDeadlineWithFakeHost(t *testing.T) {
	f := &fakeSentinelHost{states: []copyState{{}}} // restoring for ever
	_, err := settleCopy(context.Background(), f, sentinelPlan{Container: "c", Armed: true, RestoreTimeout: -time.Minute}, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not end within the restore's deadline") {
		t.Fatalf("err %v", err)
	}
}

// TestSentinelProcessStopsARestoredProcessWhenItsAgentDies runs the real
// sentinel (this test binary, standing in for migrate-dst) over a real
// process: the sentinel does nothing while its agent lives; when the
// plan's pipe ends without done, it kills the post-copy process at once;
// it lets the process live when the agent said done, or died before the
// restore began (and then removes its empty log).
func TestSentinelProcessStopsARestoredProcessWhenItsAgentDies(t *testing.T) {
	for _, tc := range []struct {
		name         string
		armed, done  bool
		wantKilled   bool
		wantLogStays bool
	}{
		{"agent died in post-copy", true, false, true, true},
		{"agent settled the migration", true, true, false, false},
		{"agent died before the restore", false, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			victim := exec.Command("sleep", "60")
			if err := victim.Start(); err != nil {
				t.Fatal(err)
			}
			defer victim.Process.Kill()
			ended := make(chan error, 1)
			go func() { ended <- victim.Wait() }()
			s, err := startSentinel(os.Args[0], "", t.TempDir(), sentinelPlan{MigrationID: "m", Lazy: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			if tc.armed {
				s.update(func(p *sentinelPlan) { p.Armed = true })
				s.update(func(p *sentinelPlan) { p.Pid, p.PidStart = victim.Process.Pid, startTime(victim.Process.Pid) })
			}
			select {
			case err := <-ended:
				t.Fatalf("the process ended while its agent lived: %v", err)
			case <-time.After(200 * time.Millisecond):
			}
			if tc.done {
				s.done()
			} else {
				s.w.Close() // as the agent's death would
			}
			wait := 5 * time.Second
			if !tc.wantKilled {
				wait = 500 * time.Millisecond
			}
			select {
			case err := <-ended:
				if !tc.wantKilled {
					t.Fatalf("the sentinel stopped the process: %v", err)
				}
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("the process ended with %v, want SIGKILL", err)
				}
			case <-time.After(wait):
				if tc.wantKilled {
					log, _ := os.ReadFile(s.logPath)
					t.Fatalf("the process runs on %v after its agent died; the sentinel's log:\n%s", wait, log)
				}
			}
			deadline := time.Now().Add(2 * time.Second)
			for {
				_, err := os.Stat(s.logPath)
				if stays := err == nil; stays == tc.wantLogStays {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the sentinel's log is there: %v, want %v", err == nil, tc.wantLogStays)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// The test binary runs as the sentinel when startSentinel starts it.
func init() {
	if len(os.Args) > 1 && os.Args[1] == SentinelArg {
		log := slog.New(slog.NewTextHandler(os.Stderr, nil))
		lock := ""
		if len(os.Args) > 3 {
			lock = os.Args[3]
		}
		if err := RunSentinel(context.Background(), os.NewFile(3, "plans"), "", lock, log); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
}

func TestSentinelPlanRoundTrips(t *testing.T) {
	p := sentinelPlan{MigrationID: "m", Container: "c", Lazy: true, Armed: true, Pid: 7, PidStart: 9, RestoreTimeout: time.Minute}
	data, _ := json.Marshal(p)
	got, ok := readPlans[sentinelPlan](bytes.NewReader(append(data, '\n')), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if !ok || got != p {
		t.Fatalf("got %+v, want %+v", got, p)
	}
}

// TestRestartedAgentWaitsForTheSentinel: a migrate-dst that starts again
// waits for the migration's sentinel (its lock) before acting on it, and
// not at all when there is none.
func TestRestartedAgentWaitsForTheSentinel(t *testing.T) {
	dir := t.TempDir()
	if waitSentinel(dir, "m", time.Second) {
		t.Fatal("busy without a sentinel")
	}
	if err := os.MkdirAll(filepath.Join(dir, sentinelDirName), 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(sentinelLock(dir, "m"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if !waitSentinel(dir, "m", 200*time.Millisecond) {
		t.Fatal("not busy while the sentinel holds its lock")
	}
	fd := int(lock.Fd())
	let := make(chan struct{})
	go func() {
		defer close(let)
		time.Sleep(100 * time.Millisecond)
		unix.Flock(fd, unix.LOCK_UN)
	}()
	if waitSentinel(dir, "m", 5*time.Second) {
		t.Fatal("still busy after the sentinel let go")
	}
	<-let
}
