//go:build linux

package migrate

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

// fakeListener (a fake: no sockets) fails Accept with errs, in order,
// then hands out one end of a pipe, then waits until closed.
type fakeListener struct {
	errs     []error
	accepted atomic.Int32
	closed   chan struct{}
}

func (l *fakeListener) Accept() (net.Conn, error) {
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		return nil, err
	}
	if l.accepted.Load() > 0 {
		<-l.closed
		return nil, net.ErrClosed
	}
	l.accepted.Add(1)
	a, b := net.Pipe()
	b.Close()
	return a, nil
}

func (l *fakeListener) Close() error {
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return nil
}

func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{} }

// Out of descriptors is a passing state, not a reason for migrate-dst to
// exit (and abandon the migrations in flight); a closed listener without
// a cancelled context is.
func TestServeOutlivesTemporaryAcceptErrorsWithFakeListener(t *testing.T) {
	s := &Server{cfg: DefaultDestConfig(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ln := &fakeListener{errs: []error{syscall.EMFILE, syscall.ENFILE, syscall.ECONNABORTED}, closed: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	deadline := time.Now().Add(5 * time.Second)
	for ln.accepted.Load() == 0 {
		select {
		case err := <-done:
			t.Fatalf("Serve returned after temporary accept errors: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("Serve never accepted after the temporary errors")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}

	other := &fakeListener{errs: []error{syscall.EBADF}, closed: make(chan struct{})}
	if err := s.Serve(context.Background(), other); err == nil {
		t.Fatal("Serve went on after a permanent accept error")
	}
	s.wg.Wait()
}

// A flood of connections that never finish their handshake is held to
// maxHandshakesPerAddr per address: later ones are closed at once, and a
// slot frees when a handshake ends. Real TCP on loopback, no TLS.
func TestServeLimitsHandshakesPerAddress(t *testing.T) {
	cfg := DefaultDestConfig()
	cfg.Transfer.InsecurePlaintext = true
	cfg.Transfer.HandshakeTimeout = 20 * time.Second
	s := &Server{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		hello: transfer.Hello{Protocol: transfer.ProtocolVersion, Role: transfer.RoleDestination, Agent: "test", DockerAPI: "1.41"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closedByServer reports whether the server hung up on c within d.
	closedByServer := func(c net.Conn, d time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(d))
		_, err := c.Read(make([]byte, 1))
		return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
	}
	var held []net.Conn
	for range maxHandshakesPerAddr {
		held = append(held, dial())
	}
	for _, c := range held {
		if closedByServer(c, 200*time.Millisecond) {
			t.Fatal("a connection within the limit was dropped")
		}
	}
	if !closedByServer(dial(), 5*time.Second) {
		t.Fatal("a connection over the per-address limit was kept")
	}
	held[0].Close()
	var admitted bool
	for deadline := time.Now().Add(5 * time.Second); !admitted && time.Now().Before(deadline); {
		admitted = !closedByServer(dial(), 200*time.Millisecond)
	}
	if !admitted {
		t.Fatal("a slot never freed after a handshake ended")
	}
}

func TestHandshakeGateCountsAllAndPerAddress(t *testing.T) {
	var g handshakeGate
	var releases []func()
	for i := range maxHandshakes {
		addr := &net.TCPAddr{IP: net.IPv4(10, 0, byte(i/maxHandshakesPerAddr), 1), Port: 1000 + i}
		r, ok := g.enter(addr)
		if !ok {
			t.Fatalf("connection %d refused below the limits", i)
		}
		releases = append(releases, r)
	}
	if _, ok := g.enter(&net.TCPAddr{IP: net.IPv4(10, 9, 9, 9)}); ok {
		t.Fatal("admitted beyond the total limit")
	}
	releases[0]()
	releases[0]() // twice is once
	if _, ok := g.enter(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}); !ok {
		t.Fatal("a released slot was not reused")
	}
	if _, ok := g.enter(&net.TCPAddr{IP: net.IPv4(10, 9, 9, 9)}); ok {
		t.Fatal("admitted beyond the total limit after reuse")
	}
}

// pipeSessions returns a plaintext session pair over a pipe (no sockets,
// no TLS): the source's end and the destination's, both configured by
// opts.
func pipeSessions(t *testing.T, opts ...func(*transfer.Config)) (src, dst *transfer.Session) {
	t.Helper()
	a, b := net.Pipe()
	cfg := func(role string) transfer.Config {
		c := transfer.DefaultConfig()
		c.InsecurePlaintext = true
		c.Hello = transfer.Hello{Protocol: transfer.ProtocolVersion, Role: role, Agent: "test", DockerAPI: "1.41", CRIU: transfer.CRIUInfo{Version: 40201}}
		for _, o := range opts {
			o(&c)
		}
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		var err error
		dst, err = transfer.Server(ctx, b, cfg(transfer.RoleDestination))
		got <- err
	}()
	src, err := transfer.Client(ctx, a, cfg(transfer.RoleSource))
	if err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close(); dst.Close() })
	return src, dst
}

// A new migration that reuses the ID of one this host still has a record
// of (here: in doubt) is refused, and the record is left as it was. Fake
// sessions over a pipe; no Docker is reached.
func TestMigrationIDWithARecordIsRefusedWithFakeSessions(t *testing.T) {
	cfg := DefaultDestConfig()
	cfg.WorkDir = t.TempDir()
	s := &Server{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), names: map[string]bool{}, active: map[string]bool{}}
	if err := os.MkdirAll(s.stateDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	old := &migrationState{MigrationID: "m-1", Name: "web", Phase: phaseInDoubt, ContainerID: "abc"}
	if err := s.saveState(old); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(s.statePath("m-1"))
	src, dst := pipeSessions(t)
	pre := &protocol.Preflight{MigrationID: "m-1", Container: protocol.ContainerSpec{Name: "web"}}
	done := make(chan struct{})
	go func() {
		s.serveMigration(context.Background(), &incoming{srv: s, sess: dst, pre: pre, log: s.log})
		close(done)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := transfer.Expect[*protocol.PreflightOK](ctx, src)
	if !errors.Is(err, transfer.ErrRejected) || !strings.Contains(err.Error(), "already has a record") {
		t.Fatalf("source got %v, want a refusal naming the record", err)
	}
	<-done
	after, _ := os.ReadFile(s.statePath("m-1"))
	if !bytes.Equal(before, after) {
		t.Fatalf("the earlier record changed:\n%s\n%s", before, after)
	}
}

// A source that stays connected but sends nothing is given up on after the
// session's PeerWaitTimeout, naming what was awaited. Fake sessions.
func TestSilentSourceIsGivenUpOnWithFakeSessions(t *testing.T) {
	cfg := DefaultDestConfig()
	cfg.Transfer.PeerWaitTimeout = 200 * time.Millisecond
	s := &Server{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	_, dst := pipeSessions(t)
	start := time.Now()
	_, err := expectFromSource[*protocol.Restore](context.Background(), &incoming{srv: s, sess: dst, log: s.log})
	if !errors.Is(err, transfer.ErrIdle) || !strings.Contains(err.Error(), "restore") {
		t.Fatalf("got %v, want ErrIdle naming the awaited message", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("gave up after %v", took)
	}
}

// TestSourceSilentAfterItsHelloIsGivenUpOnWithFakeSessions: a source that
// authenticates and then sends nothing does not hold its session: handle
// ends it after the peer wait, and the source sees it end.
func TestSourceSilentAfterItsHelloIsGivenUpOnWithFakeSessions(t *testing.T) {
	cfg := DefaultDestConfig()
	cfg.Transfer.InsecurePlaintext = true
	cfg.Transfer.PeerWaitTimeout = 200 * time.Millisecond
	s := &Server{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		hello: transfer.Hello{Protocol: transfer.ProtocolVersion, Role: transfer.RoleDestination, Agent: "test", DockerAPI: "1.41", CRIU: transfer.CRIUInfo{Version: 40201}}}
	a, b := net.Pipe()
	done := make(chan struct{})
	start := time.Now()
	go func() { s.handle(context.Background(), b, func() {}); close(done) }()
	ccfg := transfer.DefaultConfig()
	ccfg.InsecurePlaintext = true
	ccfg.Hello = transfer.Hello{Protocol: transfer.ProtocolVersion, Role: transfer.RoleSource, Agent: "test", DockerAPI: "1.41", CRIU: transfer.CRIUInfo{Version: 40201}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	src, err := transfer.Client(ctx, a, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("handle still holds a silent source's session after 5 s")
	}
	if _, err := src.Recv(ctx); err == nil || !strings.Contains(err.Error(), "sent nothing") {
		t.Fatalf("the source saw %v, want the destination's reason", err)
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Fatalf("gave up after %v, before the peer wait", took)
	}
}
