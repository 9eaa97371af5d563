// Package transfer is the wire between the two migration agents: one TCP
// connection, authenticated with mutual TLS 1.3, multiplexed with yamux into a
// control stream (length-prefixed, strictly decoded messages), directory
// streams (zstd-compressed, checksummed file trees) and port tunnels. The
// format is written down in spec.md.
package transfer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/klauspost/compress/zstd"
)

// Session is one authenticated, multiplexed connection to a peer agent. The
// first failure anywhere (a stream, the control reader, the connection) closes
// it, and every waiter then sees that cause through Err.
type Session struct {
	cfg    Config
	log    *slog.Logger
	conn   *recordingConn
	mux    *yamux.Session
	ctrl   net.Conn
	peer   Hello
	enc    *zstd.Encoder // nil when compression is off
	dec    *zstd.Decoder
	wmu    sync.Mutex // serialises control writes
	inbox  chan Message
	router router
	heard  atomic.Int64 // when the peer last sent through a tunnel (Unix ns)

	done chan struct{}
	once sync.Once
	err  error
}

// recordingConn keeps the first read error of the raw connection, which
// yamux hides behind its own errors; it turns "session shutdown" into the
// cause a person can act on (a TLS alert, a reset).
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	err error
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *recordingConn) readErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Client runs the client side of a session over conn (a fresh TCP
// connection): TLS, yamux, then the Hello exchange. On failure conn is closed.
func Client(ctx context.Context, conn net.Conn, cfg Config) (*Session, error) {
	return establish(ctx, conn, cfg, true)
}

// Server runs the server side of a session over an accepted conn. A peer
// that fails authentication or the handshake is refused; its address is
// logged.
func Server(ctx context.Context, conn net.Conn, cfg Config) (*Session, error) {
	return establish(ctx, conn, cfg, false)
}

// Dial connects to addr and runs Client. The TLS server name defaults to
// addr's host.
func Dial(ctx context.Context, addr string, cfg Config) (*Session, error) {
	if cfg.TLS != nil && cfg.TLS.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("transfer: dial %s: %w", addr, err)
		}
		cfg.TLS = cfg.TLS.Clone()
		cfg.TLS.ServerName = host
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transfer: dial %s: %w", addr, err)
	}
	return Client(ctx, conn, cfg)
}

func establish(ctx context.Context, raw net.Conn, cfg Config, client bool) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		raw.Close()
		cfg.logger().Error("session refused: invalid settings", "peer", raw.RemoteAddr().String(), "err", err)
		return nil, err
	}
	if cfg.Hello.Protocol == 0 {
		cfg.Hello.Protocol = ProtocolVersion
	}
	log := cfg.logger().With("peer", raw.RemoteAddr().String())
	// One deadline covers TLS and the Hello exchange; ctx can cut it short.
	raw.SetDeadline(time.Now().Add(cfg.HandshakeTimeout))
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	s, err := handshake(ctx, raw, cfg, client, log)
	if err != nil {
		if !client {
			// Per address and cause: a flood of one refusal shows once a
			// period, a different refusal from there at once.
			host, _, _ := net.SplitHostPort(raw.RemoteAddr().String())
			cause := err.Error()
			if len(cause) > 160 {
				cause = cause[:160]
			}
			if ok, held := refusedLog.allow(host+" "+refusalKind(cause), time.Now()); ok {
				log.Warn("peer refused", "err", err, "refusals_not_logged", held)
			}
		}
		raw.Close()
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, ctx.Err())
		}
		return nil, err
	}
	if !stop() {
		s.Fail(ctx.Err())
		return nil, ctx.Err()
	}
	raw.SetDeadline(time.Time{})
	s.start()
	return s, nil
}

// newSession runs yamux over conn, client or server side, with the
// session's codecs; the Hello exchange comes next.
func newSession(conn *recordingConn, cfg Config, client bool, log *slog.Logger) (*Session, error) {
	ycfg := yamux.DefaultConfig()
	ycfg.MaxStreamWindowSize = cfg.StreamWindow
	ycfg.EnableKeepAlive = cfg.KeepAlive > 0
	if cfg.KeepAlive > 0 {
		ycfg.KeepAliveInterval = cfg.KeepAlive
	}
	ycfg.ConnectionWriteTimeout = cfg.DeadPeerTimeout
	ycfg.StreamOpenTimeout = cfg.HandshakeTimeout
	ycfg.LogOutput = nil
	ycfg.Logger = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	var mux *yamux.Session
	var err error
	if client {
		mux, err = yamux.Client(conn, ycfg)
	} else {
		mux, err = yamux.Server(conn, ycfg)
	}
	if err != nil {
		return nil, fmt.Errorf("transfer: yamux: %w", err)
	}
	s := &Session{cfg: cfg, log: log, conn: conn, mux: mux, inbox: make(chan Message, 64), done: make(chan struct{})}
	s.router.init()
	if s.enc, s.dec, err = newCodecs(cfg.CompressLevel); err != nil {
		mux.Close()
		return nil, err
	}
	return s, nil
}

func newCodecs(level int) (*zstd.Encoder, *zstd.Decoder, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(MaxChunk))
	if err != nil {
		return nil, nil, fmt.Errorf("transfer: zstd decoder: %w", err)
	}
	if level == 0 {
		return nil, dec, nil
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)), zstd.WithEncoderConcurrency(1))
	if err != nil {
		dec.Close()
		return nil, nil, fmt.Errorf("transfer: zstd encoder: %w", err)
	}
	return enc, dec, nil
}

// explain replaces yamux's generic errors with what the raw connection saw,
// e.g. the TLS alert of a server that refused our certificate.
func (s *Session) explain(err error) error {
	var alert tls.AlertError
	if rerr := s.conn.readErr(); rerr != nil && errors.As(rerr, &alert) {
		return fmt.Errorf("%w: %v", ErrAuth, rerr)
	}
	return err
}

func (s *Session) writeMsg(w net.Conn, m Message) error {
	payload, err := encodeMessage(m)
	if err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := writeFrame(w, m.Type(), payload, s.cfg.MaxFrame); err != nil {
		return fmt.Errorf("send %s: %w", m.Type(), err)
	}
	return nil
}

func (s *Session) readMsg(r net.Conn) (Message, error) {
	t, payload, err := readFrame(r, s.cfg.MaxFrame)
	if err != nil {
		return nil, err
	}
	return decodeMessage(t, payload)
}

// start runs the session's background work: reading control messages,
// accepting streams, and noticing the connection's end.
func (s *Session) start() {
	ctrlDone := make(chan struct{})
	go func() {
		defer close(ctrlDone)
		s.readControl()
	}()
	go s.acceptStreams()
	go func() {
		select {
		case <-s.mux.CloseChan():
		case <-s.done:
			return
		}
		// The control reader sees the connection's end after any Error
		// message the peer sent before closing; let it report that cause.
		select {
		case <-ctrlDone:
		case <-time.After(time.Second):
		}
		s.fail(s.connLost())
	}()
}

// connLost describes the end of the underlying connection.
func (s *Session) connLost() error {
	cause := s.conn.readErr()
	if cause == nil {
		cause = errors.New("connection closed")
	}
	return fmt.Errorf("%w: %v", ErrClosed, cause)
}

func (s *Session) readControl() {
	for {
		m, err := s.readMsg(s.ctrl)
		if err != nil {
			if s.mux.IsClosed() {
				err = s.connLost()
			}
			s.fail(fmt.Errorf("control stream: %w", err))
			return
		}
		if e, ok := m.(*ErrorMsg); ok {
			s.fail(fmt.Errorf("%w: %s", ErrPeer, e.Message))
			return
		}
		select {
		case s.inbox <- m:
		case <-s.done:
			return
		}
	}
}

// Peer returns the Hello the peer sent.
func (s *Session) Peer() Hello { return s.peer }

// RemoteAddr is the peer's network address.
func (s *Session) RemoteAddr() net.Addr { return s.conn.RemoteAddr() }

// Send writes a control message to the peer.
func (s *Session) Send(ctx context.Context, m Message) error {
	if err := s.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		s.ctrl.SetWriteDeadline(dl)
		defer s.ctrl.SetWriteDeadline(time.Time{})
	}
	if err := s.writeMsg(s.ctrl, m); err != nil {
		s.fail(err)
		return err
	}
	return nil
}

// Recv returns the next control message from the peer. Messages that
// arrived before the session ended come first: a peer that sends its
// reason (a Reject) and then ends the session is heard.
func (s *Session) Recv(ctx context.Context) (Message, error) {
	select {
	case m := <-s.inbox:
		return m, nil
	case <-s.done:
		select {
		case m := <-s.inbox:
			return m, nil
		default:
		}
		return nil, s.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session ended, or nil while it runs.
func (s *Session) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close ends the session normally.
func (s *Session) Close() error {
	s.Fail(nil)
	return nil
}

// Fail ends the session with cause, telling the peer why (best effort, one
// second at most) before closing the connection. A nil cause is a normal
// close. Only the first cause is kept.
func (s *Session) Fail(cause error) {
	if cause == nil {
		s.end(errClosedLocally, false)
		return
	}
	s.end(cause, true)
}

func (s *Session) fail(cause error) { s.end(cause, false) }

// end records the first cause, releases every waiter, optionally tells the
// peer, and closes the connection.
func (s *Session) end(cause error, tell bool) {
	s.once.Do(func() {
		s.err = cause
		close(s.done)
		closeConn := func() {
			s.mux.Close()
			s.router.closeAll()
		}
		if tell {
			s.ctrl.SetWriteDeadline(time.Now().Add(time.Second))
			if s.writeMsg(s.ctrl, &ErrorMsg{Message: truncate(cause.Error(), maxText)}) == nil {
				// Closed at once, with data from the peer still unread here
				// (a stream it was filling), the connection would end in a
				// reset, and a kernel drops what its side has not read yet
				// when a reset arrives: our reason with it (the peer then
				// reported its own broken connection instead). The peer ends
				// the session once it has read the reason; meanwhile yamux
				// goes on reading. A second at most, in the background:
				// every waiter was released above.
				go func() {
					select {
					case <-s.mux.CloseChan():
					case <-time.After(time.Second):
					}
					closeConn()
				}()
			} else {
				closeConn()
			}
		} else {
			closeConn()
		}
		if cause != errClosedLocally {
			s.log.Info("session ended", "cause", cause)
		}
	})
}

// errClosedLocally is the cause of a session ended by Close.
var errClosedLocally = fmt.Errorf("%w: closed locally", ErrClosed)

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Expect receives the next control message and requires it to be a T. A
// Reject from the peer is returned as ErrRejected with its reason.
func Expect[T Message](ctx context.Context, s *Session) (T, error) {
	var zero T
	m, err := s.Recv(ctx)
	if err != nil {
		return zero, err
	}
	if r, ok := m.(*Reject); ok {
		return zero, fmt.Errorf("%w: %s", ErrRejected, r.Reason)
	}
	t, ok := m.(T)
	if !ok {
		return zero, fmt.Errorf("%w: %s instead of %s", ErrUnexpectedMessage, m.Type(), zero.Type())
	}
	return t, nil
}
