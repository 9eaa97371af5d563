package transfer

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHandshakeExchangesHellos(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c, s := sessionPair(t, tr)
			if c.Peer().Role != RoleDestination || s.Peer().Role != RoleSource {
				t.Fatalf("client sees %+v, server sees %+v", c.Peer(), s.Peer())
			}
			if c.Peer().DockerAPI != "1.41" || s.Peer().CRIU.Version != 40201 {
				t.Fatalf("hello fields lost: %+v / %+v", c.Peer(), s.Peer())
			}
		})
	}
}

func TestIncompatiblePeersAreToldWhatDiffers(t *testing.T) {
	tests := []struct {
		name   string
		client func(*Hello)
		want   string
	}{
		{"protocol version", func(h *Hello) { h.Protocol = ProtocolVersion + 1 }, "protocol version"},
		{"same role", func(h *Hello) { h.Role = RoleDestination }, "both peers are destinations"},
		{"no criu", func(h *Hello) { h.CRIU.Version = 0 }, "has no usable CRIU"},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				ccfg, scfg := testConfig(RoleSource), testConfig(RoleDestination)
				tt.client(&ccfg.Hello)
				a, b, ccfg, scfg := tr.connect(t, ccfg, scfg)
				c, s := establishPair(testContext(t), a, b, ccfg, scfg)
				if !errors.Is(s.err, ErrIncompatible) || !strings.Contains(s.err.Error(), tt.want) {
					t.Errorf("server: %v, want ErrIncompatible naming %q", s.err, tt.want)
				}
				if !errors.Is(c.err, ErrRejected) || !strings.Contains(c.err.Error(), tt.want) {
					t.Errorf("client: %v, want ErrRejected naming %q", c.err, tt.want)
				}
			})
		}
	}
}

func TestFailurePropagatesCauseToEveryWaiter(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c, s := sessionPair(t, tr)
			ctx := testContext(t)
			waiters := make(chan error, 3)
			go func() { _, err := s.Recv(ctx); waiters <- err }()
			go func() { _, err := s.Accept(ctx, KindDir, "never"); waiters <- err }()
			go func() { _, err := s.ReceiveDir(ctx, "never-either", t.TempDir(), ImagePolicy()); waiters <- err }()
			c.Fail(errors.New("disk full on the source"))
			for range 3 {
				err := <-waiters
				if !errors.Is(err, ErrPeer) || !strings.Contains(err.Error(), "disk full on the source") {
					t.Fatalf("waiter saw %v, want the peer's cause", err)
				}
			}
			<-s.Done()
			if !errors.Is(s.Err(), ErrPeer) {
				t.Fatalf("Err() = %v", s.Err())
			}
			if !strings.Contains(c.Err().Error(), "disk full") {
				t.Fatalf("failing side's Err() = %v", c.Err())
			}
		})
	}
}

func TestConnectionLossEndsSession(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c, s := sessionPair(t, tr)
			ctx := testContext(t)
			got := make(chan error, 1)
			go func() { _, err := s.Recv(ctx); got <- err }()
			c.conn.Conn.Close() // the wire breaks, nobody says why
			if err := <-got; !errors.Is(err, ErrClosed) {
				t.Fatalf("Recv after connection loss: %v, want ErrClosed", err)
			}
		})
	}
}

func TestControlMessagesArriveInOrder(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c, s := sessionPair(t, tr)
			ctx := testContext(t)
			for i := range 20 {
				if err := c.Send(ctx, &Reject{Reason: fmt.Sprint("r", i)}); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 20 {
				m, err := s.Recv(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if r, ok := m.(*Reject); !ok || r.Reason != fmt.Sprint("r", i) {
					t.Fatalf("message %d: %#v", i, m)
				}
			}
		})
	}
}

// tlsServer accepts one connection on a loopback listener and runs Server on
// it, logging into the returned buffer.
func tlsServer(t *testing.T, serverTLS *tls.Config) (addr string, log *logBuffer, done chan result) {
	t.Helper()
	return tlsServerWith(t, serverTLS, func(*Config) {})
}

func tlsServerWith(t *testing.T, serverTLS *tls.Config, mod func(*Config)) (addr string, log *logBuffer, done chan result) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	log = &logBuffer{}
	cfg := testConfig(RoleDestination)
	cfg.TLS = serverTLS
	cfg.Logger = log.logger()
	mod(&cfg)
	done = make(chan result, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- result{nil, err}
			return
		}
		s, err := Server(context.Background(), conn, cfg)
		done <- result{s, err}
	}()
	return ln.Addr().String(), log, done
}

func TestUnauthenticatedPeersAreRejected(t *testing.T) {
	p := loadPKI(t)
	noCert := mustTLS(t, p.host1.Client)
	noCert.Certificates = nil
	tests := []struct {
		name   string
		server TLSFiles
		client func(t *testing.T, addr string) (net.Addr, error)
		// serverSide is true when the server must refuse and log the peer;
		// false when the client refuses the server.
		serverSide bool
	}{
		{"plaintext client", p.host2, plaintextClient, true},
		{"client without certificate", p.host2, tlsClient(noCert), true},
		{"client certificate from another CA", p.host2, tlsClient(mustTLS(t, p.intruder.Client)), true},
		{"server certificate from another CA", p.intruder, tlsClient(mustTLS(t, p.host1.Client)), false},
		{"client certificate for a destination only", p.host2, tlsClient(mustTLS(t, p.destinationOnly.Client)), true},
		{"server certificate for a source only", p.sourceOnly, tlsClient(mustTLS(t, p.host1.Client)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, log, done := tlsServer(t, mustTLS(t, tt.server.Server))
			local, cerr := tt.client(t, addr)
			srv := <-done
			if srv.err == nil {
				srv.s.Close()
				t.Fatal("server accepted the session")
			}
			if cerr == nil {
				t.Fatal("client established a session")
			}
			if !errors.Is(srv.err, ErrAuth) {
				t.Fatalf("server error %v, want ErrAuth", srv.err)
			}
			if tt.serverSide && !strings.Contains(log.String(), local.String()) {
				t.Fatalf("server log does not name the peer %s:\n%s", local, log.String())
			}
			if !tt.serverSide && !errors.Is(cerr, ErrAuth) {
				t.Fatalf("client error %v, want ErrAuth", cerr)
			}
			if strings.Contains(tt.name, " only") && !strings.Contains(srv.err.Error()+cerr.Error(), "issued for the other role") {
				t.Fatalf("a certificate used in the wrong role is not named as such: server %v; client %v", srv.err, cerr)
			}
		})
	}
}

// plaintextClient speaks the protocol without TLS to a TLS server.
func plaintextClient(t *testing.T, addr string) (net.Addr, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(RoleSource)
	cfg.InsecurePlaintext = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := Client(ctx, conn, cfg)
	if err == nil {
		s.Close()
	}
	return conn.LocalAddr(), err
}

func tlsClient(c *tls.Config) func(t *testing.T, addr string) (net.Addr, error) {
	return func(t *testing.T, addr string) (net.Addr, error) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(RoleSource)
		cfg.TLS = c.Clone()
		cfg.TLS.ServerName = "127.0.0.1"
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := Client(ctx, conn, cfg)
		if err == nil {
			// Open until the test ends: closed at once, it could end the
			// server's session before the server's own send of its hello
			// was confirmed (yamux then reports a delivered frame as
			// "session shutdown"), failing a handshake that worked.
			t.Cleanup(func() { s.Close() })
		}
		return conn.LocalAddr(), err
	}
}

func TestTunnelCarriesTCPBothWays(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c, s := sessionPair(t, tr)
			ctx := testContext(t)
			// An upper-casing echo service behind the server end.
			svc, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer svc.Close()
			go func() {
				for {
					conn, err := svc.Accept()
					if err != nil {
						return
					}
					go func() {
						defer conn.Close()
						b, _ := io.ReadAll(conn) // until the client half-closes
						conn.Write([]byte(strings.ToUpper(string(b))))
					}()
				}
			}()
			var served atomic.Int64
			go s.ServeTunnel(ctx, "page-server", svc.Addr().String(), TunnelOptions{Counted: func(n int64) { served.Store(n) }})
			entry := tunnelEntry(t, ctx, c, "page-server")
			for i := range 3 {
				conn, err := net.Dial("tcp", entry)
				if err != nil {
					t.Fatal(err)
				}
				msg := strings.Repeat(fmt.Sprintf("pages %d ", i), 50000)
				go func() { conn.Write([]byte(msg)); conn.(*net.TCPConn).CloseWrite() }()
				got, err := io.ReadAll(bufio.NewReader(conn))
				conn.Close()
				if err != nil || string(got) != strings.ToUpper(msg) {
					t.Fatalf("round %d: %d bytes back, %v", i, len(got), err)
				}
			}
			if want := int64(3 * len(strings.Repeat("pages 0 ", 50000))); served.Load() != want {
				t.Fatalf("tunnel counted %d bytes from the service, want %d", served.Load(), want)
			}
		})
	}
}

// TestTunnelWaitsForALateService connects through a tunnel before the
// service listens, as CRIU's lazy-pages daemon does before the source's
// page server is up.
func TestTunnelWaitsForALateService(t *testing.T) {
	c, s := sessionPair(t, transports[1])
	ctx := testContext(t)
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close() // nothing listens here yet
	go s.ServeTunnel(ctx, "late", addr, TunnelOptions{})
	conn := dialTunnel(t, ctx, c, "late")
	defer conn.Close()
	time.Sleep(300 * time.Millisecond) // the tunnel is already retrying
	svc, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	go func() {
		if sc, err := svc.Accept(); err == nil {
			sc.Write([]byte("served late\n"))
			sc.Close()
		}
	}()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || line != "served late\n" {
		t.Fatalf("got %q, %v", line, err)
	}
}

// TestHostilePeerStreams: a peer that opens streams and sends no header, or
// announces a header of a full frame, ends the session at once instead of
// holding goroutines and memory.
func TestHostilePeerStreams(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name+"/flood without headers", func(t *testing.T) {
			c, s := sessionPair(t, tr)
			for range maxPending + 1 {
				if _, err := c.mux.OpenStream(); err != nil {
					break
				}
			}
			waitEnded(t, s, "unclaimed streams")
		})
		t.Run(tr.name+"/header announcing a full frame", func(t *testing.T) {
			c, s := sessionPair(t, tr)
			st, err := c.mux.OpenStream()
			if err != nil {
				t.Fatal(err)
			}
			st.Write([]byte{0, 0x10, 0, 0, 0, byte(MsgStreamOpen)})
			waitEnded(t, s, ErrFrameTooLarge.Error())
		})
	}
}

// TestSilentStreamFailsAfterIdleTimeout: a directory stream whose sender
// goes quiet fails with ErrIdle once StreamIdleTimeout passes.
func TestSilentStreamFailsAfterIdleTimeout(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c, s := sessionPairWith(t, tr, func(cfg *Config) { cfg.StreamIdleTimeout = 300 * time.Millisecond })
			ctx := testContext(t)
			if _, err := c.Open(ctx, KindDir, "images"); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_, err := s.ReceiveDir(ctx, "images", t.TempDir(), ImagePolicy())
			if !errors.Is(err, ErrIdle) {
				t.Fatalf("got %v, want ErrIdle", err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("idle stream failed after %v", took)
			}
		})
	}
}

// TestTricklingStreamFailsUnderTheRateFloor: a directory stream whose
// sender never goes idle but sends a byte now and then (here a record's
// bytes, one every 20 ms) fails with ErrIdle once a window of
// StreamIdleTimeout carried less than StreamMinRate; a stream above the
// floor is received.
func TestTricklingStreamFailsUnderTheRateFloor(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c, s := sessionPairWith(t, tr, func(cfg *Config) { cfg.StreamIdleTimeout = 300 * time.Millisecond })
			ctx := testContext(t)
			st, err := c.Open(ctx, KindDir, "images")
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				st.Write([]byte{'E', 0, 0, 0x10, 0}) // a record of 4 KiB follows
				for i := 0; i < 4096 && ctx.Err() == nil; i++ {
					if _, err := st.Write([]byte{0}); err != nil {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
			start := time.Now()
			_, err = s.ReceiveDir(ctx, "images", t.TempDir(), ImagePolicy())
			if !errors.Is(err, ErrIdle) || !strings.Contains(err.Error(), "under the floor") {
				t.Fatalf("got %v, want ErrIdle under the floor", err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("trickling stream failed after %v", took)
			}
		})
	}
	var w rateWindow
	w.since = time.Now().Add(-time.Second)
	if err := w.add(32<<10, time.Second/2, 16<<10); err != nil {
		t.Fatalf("32 KiB in a second, floor 16 KiB/s: %v", err)
	}
	if w.bytes != 0 {
		t.Fatalf("the window did not start again: %d bytes counted", w.bytes)
	}
}

func waitEnded(t *testing.T, s *Session, cause string) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the session survived a hostile peer")
	}
	if !strings.Contains(s.Err().Error(), cause) {
		t.Fatalf("session ended with %v, want %q", s.Err(), cause)
	}
}

// TestAllowListAdmitsOnlyNamedPeers: with AllowPeers, a certificate the CA
// signed but that names none of them is refused, and the source is told
// why; a named one gets in.
func TestAllowListAdmitsOnlyNamedPeers(t *testing.T) {
	p := loadPKI(t)
	for _, c := range []struct {
		allow []string
		ok    bool
	}{{[]string{"host3", "host4"}, false}, {[]string{"host3", "host1"}, true}} {
		addr, log, done := tlsServerWith(t, mustTLS(t, p.host2.Server), func(cfg *Config) { cfg.AllowPeers = c.allow })
		_, cerr := tlsClient(mustTLS(t, p.host1.Client))(t, addr)
		srv := <-done
		if c.ok {
			if cerr != nil || srv.err != nil {
				t.Fatalf("allowed peer refused: client %v, server %v", cerr, srv.err)
			}
			srv.s.Close()
			continue
		}
		if !errors.Is(cerr, ErrRejected) || !strings.Contains(cerr.Error(), `host "host1" is not allowed here`) {
			t.Fatalf("client error %v, want a rejection naming host1", cerr)
		}
		if !errors.Is(srv.err, ErrAuth) || !strings.Contains(log.String(), "not allowed") {
			t.Fatalf("server error %v, log:\n%s", srv.err, log.String())
		}
	}
	cfg := testConfig(RoleDestination)
	cfg.InsecurePlaintext, cfg.AllowPeers = true, []string{"host1"}
	if err := cfg.ValidateSettings(); err == nil {
		t.Fatal("an allow-list without TLS was accepted")
	}
}

// TestServerNamesMigrationsInDoubtToTheirSource: a server's hello to a
// source carries what InDoubtFor gives for the name the source's
// certificate proves (host1), and a hello naming too many or malformed
// migrations is invalid.
func TestServerNamesMigrationsInDoubtToTheirSource(t *testing.T) {
	p := loadPKI(t)
	var asked []string
	addr, _, done := tlsServerWith(t, mustTLS(t, p.host2.Server), func(cfg *Config) {
		cfg.InDoubtFor = func(peer string) []string {
			asked = append(asked, peer)
			return []string{"mig-1", "mig-2"}
		}
	})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(RoleSource)
	cfg.TLS = mustTLS(t, p.host1.Client)
	cfg.TLS.ServerName = "127.0.0.1"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Client(ctx, conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := <-done
	if srv.err != nil {
		t.Fatal(srv.err)
	}
	defer srv.s.Close()
	defer c.Close()
	if got := c.Peer().InDoubt; !slices.Equal(got, []string{"mig-1", "mig-2"}) || !slices.Equal(asked, []string{"host1"}) || srv.s.PeerName() != "host1" {
		t.Fatalf("in doubt %q, asked for %q, peer %q", got, asked, srv.s.PeerName())
	}
	h := testConfig(RoleDestination).Hello
	h.Protocol = ProtocolVersion
	for _, bad := range [][]string{{"../x"}, make([]string, MaxInDoubt+1)} {
		h.InDoubt = bad
		for i := range h.InDoubt {
			if h.InDoubt[i] == "" {
				h.InDoubt[i] = "m"
			}
		}
		if err := h.Validate(); err == nil {
			t.Fatalf("a hello with %d migrations in doubt (%q...) is valid", len(bad), bad[0])
		}
	}
}

// TestSourceAllowListRefusesOtherDestinations: a source's AllowPeers names
// the destinations it sends to; another host the CA signed gets no Hello.
func TestSourceAllowListRefusesOtherDestinations(t *testing.T) {
	p := loadPKI(t)
	for _, c := range []struct {
		allow []string
		ok    bool
	}{{[]string{"host3"}, false}, {[]string{"host2"}, true}} {
		addr, _, done := tlsServer(t, mustTLS(t, p.host2.Server))
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(RoleSource)
		cfg.TLS = mustTLS(t, p.host1.Client)
		cfg.TLS.ServerName = "127.0.0.1"
		cfg.AllowPeers = c.allow
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, cerr := Client(ctx, conn, cfg)
		cancel()
		srv := <-done
		if c.ok {
			if cerr != nil || srv.err != nil {
				t.Fatalf("allowed destination refused: client %v, server %v", cerr, srv.err)
			}
			s.Close()
			srv.s.Close()
			continue
		}
		if !errors.Is(cerr, ErrAuth) || !strings.Contains(cerr.Error(), `host "host2" is not allowed here`) {
			t.Fatalf("client error %v, want a refusal naming host2", cerr)
		}
		if srv.err == nil {
			srv.s.Close()
			t.Fatal("the destination got a session from a source that may not send to it")
		}
	}
}

// TestUnopenedStreamFailsAfterPeerWaitTimeout: a receiver waiting for a
// directory stream the peer never opens gives up with ErrIdle.
func TestUnopenedStreamFailsAfterPeerWaitTimeout(t *testing.T) {
	_, s := sessionPairWith(t, transports[0], func(cfg *Config) { cfg.PeerWaitTimeout = 200 * time.Millisecond })
	_, err := s.ReceiveDir(testContext(t), "images", t.TempDir(), ImagePolicy())
	if !errors.Is(err, ErrIdle) || !strings.Contains(err.Error(), "did not open") {
		t.Fatalf("got %v, want ErrIdle naming the stream", err)
	}
}

// TestRevokedCertificateIsRefused: a host whose certificate was revoked
// (certs --revoke, the list copied into the peer's TLS directory) is
// refused in the handshake, naming the revocation, also by an agent that
// was already running when the list arrived; the list's other entries
// leave other hosts in, and a malformed list is an error at load.
func TestRevokedCertificateIsRefused(t *testing.T) {
	p := loadPKI(t)
	caDir := filepath.Dir(filepath.Dir(p.host1.Cert))
	dir := t.TempDir()
	revoked := filepath.Join(dir, RevokedFile)
	copyRevocation := func() {
		path, serials, err := Revoke(caDir, "src")
		if err != nil || len(serials) != 1 {
			t.Fatalf("revoke: %v %v", serials, err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(revoked, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	server := p.host2
	server.Revoked = revoked
	// The list arrives while the server runs: its next handshake reads it.
	running := mustTLS(t, server.Server)
	addr, _, done := tlsServer(t, running)
	if _, cerr := tlsClient(mustTLS(t, p.sourceOnly.Client))(t, addr); cerr != nil {
		t.Fatalf("before the revocation: %v", cerr)
	}
	if srv := <-done; srv.err == nil {
		srv.s.Close()
	}
	copyRevocation()
	addr, log, done := tlsServer(t, running)
	_, cerr := tlsClient(mustTLS(t, p.sourceOnly.Client))(t, addr)
	srv := <-done
	if cerr == nil || srv.err == nil || !errors.Is(srv.err, ErrAuth) || !strings.Contains(srv.err.Error(), "is revoked") {
		t.Fatalf("revoked client: client %v, server %v\n%s", cerr, srv.err, log.String())
	}
	addr, _, done = tlsServer(t, mustTLS(t, server.Server))
	if _, cerr := tlsClient(mustTLS(t, p.host1.Client))(t, addr); cerr != nil {
		t.Fatalf("a host not on the list: %v", cerr)
	}
	if srv := <-done; srv.err == nil {
		srv.s.Close()
	}
	if err := os.WriteFile(revoked, []byte("not-a-serial\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Server(); err == nil || !strings.Contains(err.Error(), "not a serial number") {
		t.Fatalf("a malformed revocation list: %v", err)
	}
}
