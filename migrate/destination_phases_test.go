//go:build linux

package migrate

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

// fakeArrival (a fake: no Docker, no CRIU) accepts any preflight, receives
// the final dump as a container arrival does when its pages come on a
// stream of their own (a tunnel to a page server, here a sink), and
// "restores" by reporting the copy restored at once.
// fakeContainerID is the fake arrival's container.
const fakeContainerID = "c0ffee0000000000000000000000000000000000000000000000000000000001"

type fakeArrival struct {
	in  *incoming
	dir string
}

func (f *fakeArrival) accept(context.Context) (*protocol.PreflightOK, func(), error) {
	f.in.state = migrationState{MigrationID: f.in.pre.MigrationID, Name: "web", Phase: phasePrepared, ContainerID: fakeContainerID}
	return &protocol.PreflightOK{}, func() {}, nil
}

func (f *fakeArrival) prepare(context.Context) (string, error) { return f.dir, nil }

func (f *fakeArrival) receive(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go f.in.sess.ServeTunnelTo(ctx, protocol.TunnelPages, func(context.Context) (net.Conn, error) {
		mine, sink := net.Pipe()
		go io.Copy(io.Discard, sink)
		return mine, nil
	}, transfer.TunnelOptions{})
	return f.in.receiveBounded(ctx, protocol.StreamImages, filepath.Join(f.dir, "images"), imagePolicy(), f.in.pre.Sizes.Memory)
}

func (f *fakeArrival) restore(ctx context.Context) error {
	if err := f.in.recordRestored(); err != nil {
		return err
	}
	return f.in.sess.Send(ctx, &protocol.Restored{ContainerID: fakeContainerID})
}

// A source that holds a migration without ever being idle is given up on
// at the phase's deadline, which names the phase: one that keeps its page
// tunnel trickling (a byte every 50 ms: the peer wait never ends) but
// never sends its images, and one that never sends its commit once the
// copy runs here (in doubt then: paused). Without phase deadlines both
// held the migration until the test's own deadline. Fake arrival and
// Docker, real sessions over a pipe.
func TestPhaseDeadlinesEndAStallingSourceWithFakeArrival(t *testing.T) {
	for _, c := range []struct {
		phase  string
		source func(ctx context.Context, t *testing.T, src *transfer.Session)
		calls  []string
	}{
		{"transfer", func(ctx context.Context, t *testing.T, src *transfer.Session) {
			local, dump := net.Pipe()
			go src.Carry(ctx, local, protocol.TunnelPages, transfer.TunnelOptions{})
			for ctx.Err() == nil {
				dump.SetWriteDeadline(time.Now().Add(time.Second))
				dump.Write([]byte{0})
				time.Sleep(50 * time.Millisecond)
			}
		}, []string{"rm " + fakeContainerID}},
		{"commit", func(ctx context.Context, t *testing.T, src *transfer.Session) {
			images := t.TempDir()
			if err := os.WriteFile(filepath.Join(images, "inventory.img"), []byte("x"), 0o600); err != nil {
				t.Error(err)
				return
			}
			if _, err := src.SendDir(ctx, protocol.StreamImages, images); err != nil {
				t.Error(err)
				return
			}
			if err := src.Send(ctx, &protocol.Restore{}); err != nil {
				t.Error(err)
				return
			}
			if _, err := transfer.Expect[*protocol.Restored](ctx, src); err != nil {
				t.Error(err)
			}
			<-ctx.Done() // and no commit
		}, []string{"pause " + fakeContainerID}},
	} {
		t.Run(c.phase, func(t *testing.T) {
			cfg := DefaultDestConfig()
			cfg.WorkDir, cfg.RuntimeState = t.TempDir(), t.TempDir()
			cfg.Transfer.PeerWaitTimeout = 300 * time.Millisecond
			cfg.Transfer.StreamMinRate = 1 << 30 // 1 GiB/s: about a second for what the phases may carry
			fake := &fakeDocker{paused: map[string]bool{}}
			s := &Server{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), undoWith: fake, names: map[string]bool{}, active: map[string]bool{}}
			if err := os.MkdirAll(s.stateDir(), 0o700); err != nil {
				t.Fatal(err)
			}
			src, dst := pipeSessions(t, func(c *transfer.Config) { c.PeerWaitTimeout = cfg.Transfer.PeerWaitTimeout })
			pre := &protocol.Preflight{MigrationID: "m-1", Strategy: protocol.StrategyStopAndCopy, RemotePages: true, Sizes: protocol.Sizes{Memory: 1 << 20}}
			in := &incoming{srv: s, sess: dst, pre: pre, log: s.log}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			sctx, stop := context.WithCancel(ctx)
			defer stop()
			go func() {
				if _, err := transfer.Expect[*protocol.PreflightOK](sctx, src); err != nil {
					t.Error(err)
					return
				}
				c.source(sctx, t, src)
			}()
			start := time.Now()
			err := in.runArrival(ctx, &fakeArrival{in: in, dir: t.TempDir()})
			took := time.Since(start)
			stop()
			if !errors.Is(err, transfer.ErrIdle) || !strings.Contains(err.Error(), "the "+c.phase+" phase") {
				t.Fatalf("after %v: got %v, want the %s phase's deadline", took.Round(time.Millisecond), err, c.phase)
			}
			if took > 10*time.Second {
				t.Fatalf("the %s phase ended after %v", c.phase, took)
			}
			if got := fake.recorded(); !slices.Equal(got, c.calls) {
				t.Errorf("undone with %v, want %v", got, c.calls)
			}
		})
	}
}

// A phase's deadline is the peer wait plus what it may carry at the rate
// floor; it saturates instead of wrapping, and there is none without a
// floor.
func TestPhaseLimit(t *testing.T) {
	for _, c := range []struct {
		carried, rate int64
		want          time.Duration
		ok            bool
	}{
		{0, 16 << 10, 10 * time.Minute, true},
		{16 << 20, 16 << 10, 10*time.Minute + 1024*time.Second, true},
		{math.MaxInt64, 1, math.MaxInt64, true},
		{math.MaxInt64 - 1, 2, math.MaxInt64, true},
		{1 << 30, 0, 0, false},
	} {
		cfg := DefaultDestConfig()
		cfg.Transfer.StreamMinRate = c.rate
		in := &incoming{srv: &Server{cfg: cfg}}
		if got, ok := in.phaseLimit(c.carried); got != c.want || ok != c.ok {
			t.Errorf("phaseLimit(%d) at %d B/s = %v, %v; want %v, %v", c.carried, c.rate, got, ok, c.want, c.ok)
		}
	}
}
