package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Forward accepts TCP connections on ln and carries each over a new tunnel
// stream called name; the peer's ServeTunnel(name, ...) connects it onwards.
// It returns when ctx ends, ln is closed or the session fails; it closes ln.
// toPeer, if set, wraps what each local client sends before it goes to the
// peer; an error from the wrapper (rather than io.EOF) aborts both
// connections with a reset, and what the wrapper did not return is never
// sent.
func (s *Session) Forward(ctx context.Context, ln net.Listener, name string, toPeer func(io.Reader) io.Reader) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	go func() {
		<-s.done
		ln.Close()
	}()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return s.tunnelEnd(ctx, err)
		}
		st, err := s.Open(ctx, KindTunnel, name)
		if err != nil {
			c.Close()
			return s.tunnelEnd(ctx, err)
		}
		fc := s.framed(st)
		var in io.Reader = c
		if toPeer != nil {
			in = toPeer(c)
		}
		wg.Add(1)
		go func() { defer wg.Done(); splice(c, fc, in, fc, s.failed) }()
	}
}

// Carry carries the one local connection c over a new tunnel stream called
// name (the peer's ServeTunnelTo takes it) until both directions have
// ended or ctx ends (then both are aborted), and closes c. Of opts,
// Counted receives the bytes read from c so far, Wire what they took on
// the wire, and FromPeer wraps what the peer sends before it reaches c.
func (s *Session) Carry(ctx context.Context, c net.Conn, name string, opts TunnelOptions) error {
	st, err := s.Open(ctx, KindTunnel, name)
	if err != nil {
		c.Close()
		return s.tunnelEnd(ctx, err)
	}
	fc := s.framed(st)
	fc.sent = opts.Wire
	var from, to io.Reader = c, fc
	if opts.Counted != nil {
		from = &countingReader{r: c, total: new(atomic.Int64), report: opts.Counted}
	}
	if opts.FromPeer != nil {
		to = opts.FromPeer(fc)
	}
	stop := context.AfterFunc(ctx, func() { abort(c); fc.Close() })
	defer stop()
	splice(c, fc, from, to, func() bool { return s.failed() || ctx.Err() != nil })
	return s.tunnelEnd(ctx, nil)
}

// TunnelOptions adjust ServeTunnel.
type TunnelOptions struct {
	// Counted, if set, receives the bytes read from the service so far.
	Counted func(int64)
	// Wire, if set, receives the bytes sent to the peer so far, after
	// compression and framing.
	Wire func(int64)
	// FromPeer, if set, wraps what the peer sends before it reaches the
	// service. An error from the wrapper (rather than io.EOF) aborts both
	// connections with a reset: a service protocol can tell a peer that
	// finished from one that vanished, where a plain end would look alike.
	FromPeer func(io.Reader) io.Reader
}

// ServeTunnel connects every tunnel stream called name that the peer opens
// to the TCP address addr, until ctx ends or the session fails. The service
// may start listening a little after the peer connects (CRIU's page server
// does): a refused dial is retried for up to HandshakeTimeout.
//
// Each connection to the service is armed to end with a TCP reset: if this
// process dies, the kernel closes it with a reset rather than a FIN, which
// CRIU's page server would take for "every page delivered" (and then kill
// the original). splice disarms it when the exchange ends cleanly.
func (s *Session) ServeTunnel(ctx context.Context, name, addr string, opts TunnelOptions) error {
	return s.ServeTunnelTo(ctx, name, func(ctx context.Context) (net.Conn, error) {
		c, err := s.dialRetry(ctx, addr)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		c.(*net.TCPConn).SetLinger(0)
		return c, nil
	}, opts)
}

// ServeTunnelTo is ServeTunnel with each connection to the service made by
// dial, once for every tunnel stream called name that the peer opens. A
// dial that fails ends it with that error.
func (s *Session) ServeTunnelTo(ctx context.Context, name string, dial func(context.Context) (net.Conn, error), opts TunnelOptions) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	var total, wire atomic.Int64
	for {
		st, err := s.Accept(ctx, KindTunnel, name)
		if err != nil {
			return s.tunnelEnd(ctx, err)
		}
		c, err := dial(ctx)
		if err != nil {
			st.Close()
			return fmt.Errorf("transfer: tunnel %q: %w", name, err)
		}
		fc := s.framed(st)
		fc.wire, fc.sent = &wire, opts.Wire
		var from, to io.Reader = c, fc
		if opts.Counted != nil {
			from = &countingReader{r: c, total: &total, report: opts.Counted}
		}
		if opts.FromPeer != nil {
			to = opts.FromPeer(fc)
		}
		wg.Add(1)
		go func() { defer wg.Done(); splice(c, fc, from, to, s.failed) }()
	}
}

func (s *Session) dialRetry(ctx context.Context, addr string) (net.Conn, error) {
	deadline := time.Now().Add(s.cfg.HandshakeTimeout)
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil || time.Now().After(deadline) || !errors.Is(err, syscall.ECONNREFUSED) {
			return c, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
			return nil, s.err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// countingReader reports the running total of bytes read through it.
type countingReader struct {
	r      io.Reader
	total  *atomic.Int64
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.report(c.total.Add(int64(n)))
	}
	return n, err
}

func (s *Session) tunnelEnd(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if serr := s.Err(); serr != nil {
		return serr
	}
	return err
}

// closeWrite ends the sending direction of c. A yamux stream's Close is
// already a half close (it sends FIN and keeps receiving); TCP has CloseWrite.
func closeWrite(c net.Conn) {
	if hc, ok := c.(interface{ CloseWrite() error }); ok {
		hc.CloseWrite()
		return
	}
	c.Close()
}

// splice copies both ways until both directions have ended, passing each
// end-of-stream on as a half close, then closes both. aIn and bIn are where
// a's and b's bytes are read from (a and b themselves, or wrappers).
//
// When the session fails, its streams end as if cleanly; failed tells the
// two apart, and then both connections are aborted with a TCP reset. The
// service must not mistake a dead link for a finished exchange: CRIU's page
// server takes a clean close as "every page delivered" and kills the
// original.
func splice(a, b net.Conn, aIn, bIn io.Reader, failed func() bool) {
	var wg sync.WaitGroup
	wg.Add(2)
	pass := func(dst, src net.Conn, in io.Reader) {
		defer wg.Done()
		// Reads of up to a whole frame: a read returns what is there (a
		// page request is not held back), and a stream of pages goes in
		// frames that compress and travel well.
		if _, err := io.CopyBuffer(onlyWriter{dst}, onlyReader{in}, make([]byte, maxTunnelFrame)); err != nil || failed() {
			abort(dst)
			abort(src)
			return
		}
		closeWrite(dst)
	}
	go pass(a, b, bIn)
	go pass(b, a, aIn)
	wg.Wait()
	if failed() {
		abort(a)
	} else if tc, ok := a.(*net.TCPConn); ok {
		tc.SetLinger(-1) // a clean end: FIN, whatever ServeTunnel armed
	}
	a.Close()
	b.Close()
}

// abort closes c, with a reset rather than a FIN where c is TCP.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// failed reports whether the session is dying for any reason but a local
// Close. The multiplexer closes (and ends its streams) before the session
// records why, so its state is what counts.
func (s *Session) failed() bool {
	if !s.mux.IsClosed() && s.Err() == nil {
		return false
	}
	return s.Err() != errClosedLocally
}

// onlyReader and onlyWriter hide io.WriterTo and io.ReaderFrom, so that
// io.CopyBuffer uses the buffer it is given.
type onlyReader struct{ io.Reader }
type onlyWriter struct{ io.Writer }

// framed is st, a tunnel stream of this session, as its byte stream. What
// arrives through it counts as the peer at work (PeerWait).
func (s *Session) framed(st net.Conn) *framedConn {
	fc := newFramedConn(st, s.enc, s.dec)
	fc.heard = &s.heard
	return fc
}

// PeerWait returns a context that ends with cause once d has passed
// without the peer sending anything through a tunnel: for a receiver
// waiting for a message or a stream that the peer sends after long work
// whose bytes flow meanwhile (a dump whose pages go to this host's page
// server), d bounds its silence, not the work. Keepalives do not count.
func (s *Session) PeerWait(ctx context.Context, d time.Duration, cause error) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancelCause(ctx)
	start := time.Now().UnixNano()
	go func() {
		t := time.NewTimer(d)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
				last := max(start, s.heard.Load())
				quiet := time.Duration(time.Now().UnixNano() - last)
				if quiet >= d {
					cancel(cause)
					return
				}
				t.Reset(d - quiet)
			}
		}
	}()
	return wctx, func() { cancel(context.Canceled) }
}
