package transfer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// maxPending bounds streams the peer opened that nobody has claimed yet; a
// peer that opens more is misbehaving.
const maxPending = 64

// maxOpenFrame bounds a stream's first frame (its kind and name): a peer
// must not make the receiver allocate a full control frame per stream
// before anything useful arrives.
const maxOpenFrame = 4 << 10

// router hands incoming streams to whoever waits for their (kind, name).
type router struct {
	mu      sync.Mutex
	pending map[string][]net.Conn
	waiting map[string][]chan net.Conn
	count   int // streams being routed or parked
	closed  bool
}

// reserve counts a stream whose header is being read; it reports false when
// maxPending streams are already being routed or parked.
func (r *router) reserve() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.count >= maxPending {
		return false
	}
	r.count++
	return true
}

// release undoes reserve for a stream that was not parked.
func (r *router) release() {
	r.mu.Lock()
	r.count--
	r.mu.Unlock()
}

func (r *router) init() {
	r.pending = map[string][]net.Conn{}
	r.waiting = map[string][]chan net.Conn{}
}

func streamKey(kind, name string) string { return kind + "/" + name }

// deliver gives a reserved stream st to the first waiter for key, or
// parks it (keeping its reservation).
func (r *router) deliver(key string, st net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		st.Close()
		r.count--
		return
	}
	if ws := r.waiting[key]; len(ws) > 0 {
		r.waiting[key] = ws[1:]
		ws[0] <- st
		r.count--
		return
	}
	r.pending[key] = append(r.pending[key], st)
}

// claim returns a parked stream for key, or a channel that will receive one.
func (r *router) claim(key string) (net.Conn, chan net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ps := r.pending[key]; len(ps) > 0 {
		r.pending[key] = ps[1:]
		r.count--
		return ps[0], nil
	}
	ch := make(chan net.Conn, 1)
	r.waiting[key] = append(r.waiting[key], ch)
	return nil, ch
}

// abandon withdraws a waiter; a stream delivered meanwhile is parked again.
func (r *router) abandon(key string, ch chan net.Conn) {
	r.mu.Lock()
	ws := r.waiting[key]
	for i, w := range ws {
		if w == ch {
			r.waiting[key] = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	r.mu.Unlock()
	select {
	case st := <-ch:
		r.mu.Lock()
		r.count++
		r.mu.Unlock()
		r.deliver(key, st)
	default:
	}
}

func (r *router) closeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, ps := range r.pending {
		for _, st := range ps {
			st.Close()
		}
	}
	r.pending = map[string][]net.Conn{}
}

// acceptStreams reads the StreamOpen frame of every stream the peer opens and
// routes it. At most maxPending streams may be unclaimed at once (their
// headers being read, or waiting for their reader): a peer that opens more
// is misbehaving.
func (s *Session) acceptStreams() {
	for {
		st, err := s.mux.AcceptStream()
		if err != nil {
			return // only when the session ends; start's monitor reports why
		}
		if !s.router.reserve() {
			st.Close()
			s.Fail(fmt.Errorf("%w: peer opened more than %d unclaimed streams", ErrUnexpectedMessage, maxPending))
			return
		}
		go s.route(st)
	}
}

func (s *Session) route(st net.Conn) {
	st.SetReadDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	m, err := s.readOpen(st)
	if err != nil {
		s.router.release()
		st.Close()
		s.Fail(fmt.Errorf("stream header: %w", err))
		return
	}
	st.SetReadDeadline(time.Time{})
	open, ok := m.(*StreamOpen)
	if !ok || open.Kind == KindControl {
		s.router.release()
		st.Close()
		s.Fail(fmt.Errorf("%w: stream opened with %s", ErrUnexpectedMessage, m.Type()))
		return
	}
	s.router.deliver(streamKey(open.Kind, open.Name), st)
}

// readOpen reads a stream's first frame, within maxOpenFrame.
func (s *Session) readOpen(st net.Conn) (Message, error) {
	t, payload, err := readFrame(st, maxOpenFrame)
	if err != nil {
		return nil, err
	}
	return decodeMessage(t, payload)
}

// Open starts a stream of kind carrying name; the peer receives it with
// Accept(kind, name).
func (s *Session) Open(ctx context.Context, kind, name string) (net.Conn, error) {
	if err := s.Err(); err != nil {
		return nil, err
	}
	st, err := s.mux.OpenStream()
	if err != nil {
		if serr := s.Err(); serr != nil {
			return nil, serr
		}
		return nil, fmt.Errorf("transfer: open %s stream %q: %w", kind, name, err)
	}
	if err := s.writeMsg(st, &StreamOpen{Kind: kind, Name: name}); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// Accept waits for the peer to open a stream of kind carrying name.
func (s *Session) Accept(ctx context.Context, kind, name string) (net.Conn, error) {
	key := streamKey(kind, name)
	st, ch := s.router.claim(key)
	if st != nil {
		return st, nil
	}
	select {
	case st := <-ch:
		return st, nil
	case <-s.done:
		s.router.abandon(key, ch)
		return nil, s.err
	case <-ctx.Done():
		s.router.abandon(key, ch)
		return nil, fmt.Errorf("transfer: waiting for %s stream %q: %w", kind, name, ctx.Err())
	}
}

// idleConn fails a read or write that makes no progress for d, and a read
// that ends a window of d in which fewer than floor bytes per second
// arrived (floor 0: no floor).
type idleConn struct {
	net.Conn
	d      time.Duration
	floor  int64
	window *rateWindow
}

// rateWindow counts what a stream carried since a moment.
type rateWindow struct {
	since time.Time
	bytes int64
}

// newIdleConn is c with the idle timeout and rate floor of cfg.
func newIdleConn(c net.Conn, cfg Config) idleConn {
	return idleConn{Conn: c, d: cfg.StreamIdleTimeout, floor: cfg.StreamMinRate, window: &rateWindow{since: time.Now()}}
}

func (c idleConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.d))
	n, err := c.Conn.Read(p)
	if err == nil && c.floor > 0 {
		err = c.window.add(int64(n), c.d, c.floor)
	}
	return n, c.explain(n, err)
}

// add counts n bytes, and at the end of each window of d fails a stream
// that carried fewer than floor bytes a second in it.
func (w *rateWindow) add(n int64, d time.Duration, floor int64) error {
	w.bytes += n
	elapsed := time.Since(w.since)
	if elapsed < d {
		return nil
	}
	if least := int64(float64(floor) * elapsed.Seconds()); w.bytes < least {
		return fmt.Errorf("%w: %d bytes in the last %v, under the floor of %d bytes/s", ErrIdle, w.bytes, elapsed.Round(100*time.Millisecond), floor)
	}
	w.since, w.bytes = time.Now(), 0
	return nil
}

func (c idleConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.d))
	n, err := c.Conn.Write(p)
	return n, c.explain(n, err)
}

func (c idleConn) explain(n int, err error) error {
	var ne net.Error
	if n == 0 && errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: no progress for %v", ErrIdle, c.d)
	}
	return err
}

// closeOnDone closes c when ctx ends or the session fails, unblocking any
// read or write on it; the returned stop undoes that.
func (s *Session) closeOnDone(ctx context.Context, c net.Conn) (stop func()) {
	quit := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-s.done:
		case <-quit:
			return
		}
		c.SetDeadline(time.Unix(1, 0))
		c.Close()
	}()
	return func() { close(quit) }
}
