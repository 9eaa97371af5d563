package transfer

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
)

// Forward accepts TCP connections on ln and carries each over a new tunnel
// stream called name; the peer's ServeTunnel(name, ...) connects it onwards.
// It returns when ctx ends, ln is closed or the session fails; it closes ln.
func (s *Session) Forward(ctx context.Context, ln net.Listener, name string) error {
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
		wg.Add(1)
		go func() { defer wg.Done(); splice(c, st) }()
	}
}

// ServeTunnel connects every tunnel stream called name that the peer opens
// to the TCP address addr, until ctx ends or the session fails.
func (s *Session) ServeTunnel(ctx context.Context, name, addr string) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		st, err := s.Accept(ctx, KindTunnel, name)
		if err != nil {
			return s.tunnelEnd(ctx, err)
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			st.Close()
			return fmt.Errorf("transfer: tunnel %q: dial %s: %w", name, addr, err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); splice(c, st) }()
	}
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
// end-of-stream on as a half close, then closes both.
func splice(a, b net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	pass := func(dst, src net.Conn) {
		defer wg.Done()
		if _, err := io.Copy(dst, src); err != nil {
			dst.Close()
			src.Close()
			return
		}
		closeWrite(dst)
	}
	go pass(a, b)
	go pass(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}
