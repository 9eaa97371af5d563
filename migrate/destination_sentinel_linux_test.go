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
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/docker"
)

// fakeSentinelHost scripts the copy's states as Docker reports them, one
// per look (the last repeats), and records what the sentinel did.
type fakeSentinelHost struct {
	states []copyState
	err    error // every look fails with it (docker.ErrNotFound: removed)
	calls  []string
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
func (f *fakeSentinelHost) silence(int) error { f.calls = append(f.calls, "silence"); return nil }
func (f *fakeSentinelHost) kill(int, uint64) error {
	f.calls = append(f.calls, "kill")
	// Killed, Docker sees the copy end.
	f.states = []copyState{{Gone: true}}
	return nil
}
func (f *fakeSentinelHost) pause(context.Context, string) error {
	f.calls = append(f.calls, "pause")
	f.states = []copyState{{Running: true, Paused: true}}
	return nil
}

func TestSentinelSettlesTheCopyWithFakeDocker(t *testing.T) {
	running := copyState{Running: true, Pid: 42}
	restoring := copyState{} // "created": the restore runs
	for _, tt := range []struct {
		name   string
		plan   sentinelPlan
		states []copyState
		err    error
		want   []string
	}{
		{"post-copy copy with its process known: off the network and killed before Docker is asked",
			sentinelPlan{Container: "c", Lazy: true, Pid: 42}, []copyState{running}, nil,
			[]string{"silence", "kill", "look"}},
		{"post-copy copy still restoring: waited for, then stopped",
			sentinelPlan{Container: "c", Lazy: true}, []copyState{restoring, restoring, running}, nil,
			[]string{"look", "look", "look", "silence", "kill", "look"}},
		{"post-copy restore that failed: nothing to stop",
			sentinelPlan{Container: "c", Lazy: true}, []copyState{restoring, {Gone: true}}, nil,
			[]string{"look", "look"}},
		{"stop-and-copy copy: paused, never killed (the source may have committed)",
			sentinelPlan{Container: "c", Pid: 42}, []copyState{running}, nil,
			[]string{"look", "pause"}},
		{"stop-and-copy copy still restoring: paused once it runs",
			sentinelPlan{Container: "c"}, []copyState{restoring, running}, nil,
			[]string{"look", "look", "pause"}},
		{"a copy already paused is left so",
			sentinelPlan{Container: "c"}, []copyState{{Running: true, Paused: true}}, nil,
			[]string{"look"}},
		{"a copy Docker no longer has: nothing to do",
			sentinelPlan{Container: "c", Lazy: true}, nil, docker.ErrNotFound,
			[]string{"look"}},
		{"post-copy process arrival: killed, this host's network left alone",
			sentinelPlan{Lazy: true, Pid: 42}, nil, nil,
			[]string{"kill"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSentinelHost{states: tt.states, err: tt.err}
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

func TestSentinelGivesUpAtTheRestoreDeadlineWithFakeDocker(t *testing.T) {
	f := &fakeSentinelHost{states: []copyState{{}}} // restoring for ever
	_, err := settleCopy(context.Background(), f, sentinelPlan{Container: "c", Armed: true, RestoreTimeout: -time.Minute}, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not end within the restore's deadline") {
		t.Fatalf("err %v", err)
	}
}

// TestSentinelProcessStopsARestoredProcessWhenItsAgentDies runs the real
// sentinel (this test binary, standing in for migrate-dst) over a real
// process: the sentinel does nothing while its agent lives, and when the
// plan's pipe ends without done, it kills the post-copy process at once;
// done lets a second one live.
func TestSentinelProcessStopsARestoredProcessWhenItsAgentDies(t *testing.T) {
	for _, settled := range []bool{false, true} {
		victim := exec.Command("sleep", "60")
		if err := victim.Start(); err != nil {
			t.Fatal(err)
		}
		ended := make(chan error, 1)
		go func() { ended <- victim.Wait() }()
		dir := t.TempDir()
		s, err := startSentinel(os.Args[0], "", dir, sentinelPlan{MigrationID: "m", Lazy: true}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		s.update(func(p *sentinelPlan) { p.Armed = true })
		s.update(func(p *sentinelPlan) { p.Pid, p.PidStart = victim.Process.Pid, startTime(victim.Process.Pid) })
		select {
		case err := <-ended:
			t.Fatalf("the process ended while its agent lived: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
		if settled {
			s.done()
		} else {
			s.w.Close() // as the agent's death would
		}
		wait := 5 * time.Second
		if settled {
			wait = 500 * time.Millisecond
		}
		select {
		case err := <-ended:
			if settled {
				t.Fatalf("the sentinel stopped a process whose migration was settled: %v", err)
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("the process ended with %v, want SIGKILL", err)
			}
		case <-time.After(wait):
			if !settled {
				log, _ := os.ReadFile(s.logPath)
				t.Fatalf("the process runs on 5 s after its agent died; the sentinel's log:\n%s", log)
			}
			victim.Process.Kill()
		}
	}
}

// The test binary runs as the sentinel when startSentinel starts it.
func init() {
	if len(os.Args) > 1 && os.Args[1] == SentinelArg {
		log := slog.New(slog.NewTextHandler(os.Stderr, nil))
		if err := RunSentinel(context.Background(), os.NewFile(3, "plans"), "", log); err != nil {
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
