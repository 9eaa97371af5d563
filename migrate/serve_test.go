//go:build linux

package migrate

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
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
