package migrate

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

// fakeObserver (a fake: it only records) is what the destination told
// its Observer.
type fakeObserver struct {
	mu      sync.Mutex
	started []protocol.Strategy
	ended   []MigrationResult
	refused []RefusalReason
}

func (o *fakeObserver) MigrationStarted(s protocol.Strategy) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.started = append(o.started, s)
}

func (o *fakeObserver) MigrationEnded(r MigrationResult) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ended = append(o.ended, r)
}

func (o *fakeObserver) Refused(r RefusalReason) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refused = append(o.refused, r)
}

func (o *fakeObserver) seen() (started []protocol.Strategy, ended []MigrationResult, refused []RefusalReason) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.started), slices.Clone(o.ended), slices.Clone(o.refused)
}

// observedServer is a destination without Docker or CRIU, over plaintext
// sessions, that tells obs; processes selects whether it takes plain
// processes.
func observedServer(t *testing.T, obs Observer, processes bool) *Server {
	t.Helper()
	cfg := DefaultDestConfig()
	cfg.WorkDir = t.TempDir()
	cfg.AllowProcesses = processes
	cfg.Observer = obs
	cfg.Transfer.InsecurePlaintext = true
	cfg.Transfer.PeerWaitTimeout = 2 * time.Second
	s := &Server{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), names: map[string]bool{}, active: map[string]bool{},
		hello: transfer.Hello{Protocol: transfer.ProtocolVersion, Role: transfer.RoleDestination, Agent: "test", DockerAPI: "1.41", CRIU: transfer.CRIUInfo{Version: 40201}}}
	for _, d := range []string{s.stateDir(), s.processDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// connect runs s.handle on one end of a loopback TCP connection and
// returns a source's session on the other (nil when the handshake fails),
// a channel closed when handle returns, and the handshake's error.
func connect(t *testing.T, ctx context.Context, s *Server, protocolVersion int) (*transfer.Session, <-chan struct{}, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.handle(ctx, b, func() {}); close(done) }()
	cfg := transfer.DefaultConfig()
	cfg.InsecurePlaintext = true
	cfg.Hello = transfer.Hello{Protocol: protocolVersion, Role: transfer.RoleSource, Agent: "test", DockerAPI: "1.41", CRIU: transfer.CRIUInfo{Version: 40201}}
	src, err := transfer.Client(ctx, a, cfg)
	if err == nil {
		t.Cleanup(func() { src.Close() })
	}
	return src, done, err
}

func processPreflight(id string, dryRun bool) *protocol.Preflight {
	return &protocol.Preflight{MigrationID: id, Strategy: protocol.StrategyStopAndCopy, Process: &protocol.ProcessSpec{Name: "sleep"}, DryRun: dryRun}
}

// waitDone fails t unless done closes within 10 s.
func waitDone(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the destination still holds the session after 10 s")
	}
}

// A migration this host accepted is in flight from its acceptance to its
// end, which reports its outcome and the bytes it received: here a
// process migration whose source leaves after the preflight, rolled back.
// A dry run is no migration. Fake sessions over loopback TCP; no CRIU is run.
func TestMigrationIsObservedWithFakeSessions(t *testing.T) {
	obs := &fakeObserver{}
	s := observedServer(t, obs, true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	src, done, err := connect(t, ctx, s, transfer.ProtocolVersion)
	if err != nil {
		t.Fatal(err)
	}
	// The destination ends a dry run's session once it answered, which
	// can fail the send that it answered (yamux reports the shutdown).
	sendErr := src.Send(ctx, processPreflight("00000000000000d1", true))
	if _, err := transfer.Expect[*protocol.PreflightOK](ctx, src); err != nil && sendErr == nil {
		t.Fatalf("dry run: %v", err)
	}
	src.Close()
	waitDone(t, done)
	if started, ended, refused := obs.seen(); len(started)+len(ended)+len(refused) != 0 {
		t.Fatalf("a dry run was observed: started %v, ended %v, refused %v", started, ended, refused)
	}

	src, done, err = connect(t, ctx, s, transfer.ProtocolVersion)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Send(ctx, processPreflight("00000000000000a1", false)); err != nil {
		t.Fatal(err)
	}
	if _, err := transfer.Expect[*protocol.PreflightOK](ctx, src); err != nil {
		t.Fatalf("preflight: %v", err)
	}
	if started, ended, _ := obs.seen(); !slices.Equal(started, []protocol.Strategy{protocol.StrategyStopAndCopy}) || len(ended) != 0 {
		t.Fatalf("once accepted: started %v, ended %v; want one stop-and-copy in flight", started, ended)
	}
	src.Close() // before the dump arrives
	waitDone(t, done)
	_, ended, refused := obs.seen()
	if len(ended) != 1 || len(refused) != 0 {
		t.Fatalf("ended %v, refused %v; want one end and no refusal", ended, refused)
	}
	if r := ended[0]; r.Strategy != protocol.StrategyStopAndCopy || r.Outcome != OutcomeRolledBack || r.Freeze != 0 || r.PostCopy != 0 || r.WireBytes <= 0 {
		t.Fatalf("ended %+v; want stop-and-copy rolled back, no freeze, the preflight's bytes", r)
	}
}

// Each way this host refuses a peer or a migration is reported with its
// class. Fake sessions over loopback TCP; no Docker is reached.
func TestRefusalsAreObservedWithFakeSessions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tc := range []struct {
		name string
		want RefusalReason
		run  func(t *testing.T, s *Server)
	}{
		{"another protocol version", RefusalVersion, func(t *testing.T, s *Server) {
			_, done, err := connect(t, ctx, s, transfer.ProtocolVersion+1)
			if !errors.Is(err, transfer.ErrRejected) {
				t.Fatalf("handshake: %v, want a rejection", err)
			}
			waitDone(t, done)
		}},
		{"a source that says nothing", RefusalBadInput, func(t *testing.T, s *Server) {
			s.cfg.Transfer.PeerWaitTimeout = 100 * time.Millisecond
			_, done, err := connect(t, ctx, s, transfer.ProtocolVersion)
			if err != nil {
				t.Fatal(err)
			}
			waitDone(t, done)
		}},
		{"processes not taken here", RefusalPolicy, func(t *testing.T, s *Server) {
			s.cfg.AllowProcesses = false
			preflightRefused(t, ctx, s, processPreflight("00000000000000b1", false))
		}},
		{"a migration ID with a record", RefusalConflict, func(t *testing.T, s *Server) {
			if err := s.saveState(&migrationState{MigrationID: "00000000000000b2", Phase: phaseInDoubt}); err != nil {
				t.Fatal(err)
			}
			preflightRefused(t, ctx, s, processPreflight("00000000000000b2", false))
		}},
		{"a migration under way", RefusalBusy, func(t *testing.T, s *Server) {
			s.setActive("00000000000000b3", true)
			src, done, err := connect(t, ctx, s, transfer.ProtocolVersion)
			if err != nil {
				t.Fatal(err)
			}
			src.Send(ctx, processPreflight("00000000000000b3", false)) // answered by the session's end
			waitDone(t, done)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &fakeObserver{}
			tc.run(t, observedServer(t, obs, true))
			started, ended, refused := obs.seen()
			if !slices.Equal(refused, []RefusalReason{tc.want}) || len(started)+len(ended) != 0 {
				t.Fatalf("refused %v, started %v, ended %v; want only %s", refused, started, ended, tc.want)
			}
		})
	}
}

// preflightRefused sends pre to s and checks the source is refused.
func preflightRefused(t *testing.T, ctx context.Context, s *Server, pre *protocol.Preflight) {
	t.Helper()
	src, done, err := connect(t, ctx, s, transfer.ProtocolVersion)
	if err != nil {
		t.Fatal(err)
	}
	// The destination ends the session once it refused, which can fail
	// the send that it answered (yamux reports the shutdown).
	sendErr := src.Send(ctx, pre)
	if _, err := transfer.Expect[*protocol.PreflightOK](ctx, src); !errors.Is(err, transfer.ErrRejected) && sendErr == nil {
		t.Fatalf("preflight: %v, want a rejection", err)
	}
	waitDone(t, done)
}

// The end of a migration reports its freeze here (the steps the source
// is told of) and, in post-copy, the time from the copy reported running
// to its last page. Fake instants.
func TestMigrationEndFiguresWithFakeInstants(t *testing.T) {
	restored := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	steps := func() *stepClock {
		return &stepClock{last: restored, steps: []protocol.FreezeStep{{Name: "prepare", Micros: 1000}, {Name: "runc-restore", Micros: 250_000}}}
	}
	for _, tc := range []struct {
		name  string
		in    incoming
		err   error
		want  MigrationResult
		wired int64
	}{
		{"post-copy committed", incoming{pre: &protocol.Preflight{Strategy: protocol.StrategyLazy}, steps: steps(), paged: restored.Add(3 * time.Second),
			state: migrationState{Phase: phaseComplete, Lazy: true}}, nil,
			MigrationResult{Strategy: protocol.StrategyLazy, Outcome: OutcomeOK, Freeze: 251 * time.Millisecond, PostCopy: 3 * time.Second, WireBytes: 4096}, 4096},
		{"stop-and-copy in doubt", incoming{pre: &protocol.Preflight{Strategy: protocol.StrategyStopAndCopy}, steps: steps(),
			state: migrationState{Phase: phaseInDoubt}}, errors.New("link cut"),
			MigrationResult{Strategy: protocol.StrategyStopAndCopy, Outcome: OutcomeInDoubt, Freeze: 251 * time.Millisecond, WireBytes: 10}, 10},
		{"restore failed", incoming{pre: &protocol.Preflight{Strategy: protocol.StrategyPrecopy}, steps: steps(),
			state: migrationState{Phase: phasePrepared}}, errors.New("criu failed"),
			MigrationResult{Strategy: protocol.StrategyPrecopy, Outcome: OutcomeRolledBack}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &fakeObserver{}
			in := tc.in
			in.srv = &Server{cfg: DestConfig{Observer: obs}}
			in.wire = &countingConn{}
			in.wire.read.Store(tc.wired)
			err := tc.err
			in.observeEnd(&err)
			if _, ended, _ := obs.seen(); len(ended) != 1 || ended[0] != tc.want {
				t.Fatalf("ended %+v, want %+v", ended, tc.want)
			}
		})
	}
}

// The outcome follows the phase a migration failed in, before or after
// abandon undid it.
func TestOutcomeOf(t *testing.T) {
	failed := errors.New("failed")
	for _, tc := range []struct {
		name string
		st   migrationState
		err  error
		want Outcome
	}{
		{"committed", migrationState{Phase: phaseRestored}, nil, OutcomeOK},
		{"post-copy complete, commit lost", migrationState{Phase: phaseComplete, Lazy: true}, failed, OutcomeOK},
		{"before the restore", migrationState{Phase: phasePrepared}, failed, OutcomeRolledBack},
		{"restored, before abandon", migrationState{Phase: phaseRestored}, failed, OutcomeInDoubt},
		{"restored, after abandon", migrationState{Phase: phaseInDoubt}, failed, OutcomeInDoubt},
		{"post-copy restored", migrationState{Phase: phaseRestored, Lazy: true}, failed, OutcomeFailed},
		{"process restored", migrationState{Phase: phaseRestored, ProcessDir: "/p"}, failed, OutcomeInDoubt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := outcomeOf(tc.st, tc.err); got != tc.want {
				t.Fatalf("outcomeOf(%s) = %s, want %s", tc.st.Phase, got, tc.want)
			}
		})
	}
}
