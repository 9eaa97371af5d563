package transfer

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// testPKI holds credentials made once for all tests: host1 and host2 from
// one CA, and "intruder" from another.
type testPKI struct {
	host1, host2, intruder TLSFiles
	// Certificates for one role only, from host1's CA.
	sourceOnly, destinationOnly TLSFiles
}

var (
	pkiOnce sync.Once
	pki     testPKI
	pkiErr  error
)

func loadPKI(t testing.TB) testPKI {
	t.Helper()
	pkiOnce.Do(func() {
		dir, err := os.MkdirTemp("", "transfer-pki-")
		if err != nil {
			pkiErr = err
			return
		}
		main := filepath.Join(dir, "main")
		other := filepath.Join(dir, "other")
		hosts := []BundleHost{{Name: "host1", SANs: []string{"127.0.0.1"}}, {Name: "host2", SANs: []string{"127.0.0.1"}},
			{Name: "src", SANs: []string{"127.0.0.1"}, Role: RoleSource}, {Name: "dst", SANs: []string{"127.0.0.1"}, Role: RoleDestination}}
		if pkiErr = WriteBundle(main, hosts); pkiErr != nil {
			return
		}
		if pkiErr = WriteBundle(other, []BundleHost{{Name: "intruder", SANs: []string{"127.0.0.1"}}}); pkiErr != nil {
			return
		}
		pki = testPKI{
			host1:    HostTLSFiles(filepath.Join(main, "host1")),
			host2:    HostTLSFiles(filepath.Join(main, "host2")),
			intruder: HostTLSFiles(filepath.Join(other, "intruder")),

			sourceOnly:      HostTLSFiles(filepath.Join(main, "src")),
			destinationOnly: HostTLSFiles(filepath.Join(main, "dst")),
		}
	})
	if pkiErr != nil {
		t.Fatal(pkiErr)
	}
	return pki
}

func hello(role string) Hello {
	return Hello{Protocol: ProtocolVersion, Role: role, Agent: "test", CRIU: CRIUInfo{Version: 40201, LazyPages: true}, DockerAPI: "1.41"}
}

func testConfig(role string) Config {
	cfg := DefaultConfig()
	cfg.Hello = hello(role)
	cfg.HandshakeTimeout = 10 * time.Second
	return cfg
}

// logBuffer is a concurrency-safe log sink for asserting on log output.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// transport builds a connected pair of sessions. Every session test runs
// over each transport.
type transport struct {
	name string
	// connect returns the client's and server's raw connections and the
	// configs to use with them.
	connect func(t *testing.T, client, server Config) (net.Conn, net.Conn, Config, Config)
}

var transports = []transport{
	{"pipe", func(t *testing.T, client, server Config) (net.Conn, net.Conn, Config, Config) {
		a, b := net.Pipe()
		client.InsecurePlaintext, server.InsecurePlaintext = true, true
		return a, b, client, server
	}},
	{"tls", func(t *testing.T, client, server Config) (net.Conn, net.Conn, Config, Config) {
		p := loadPKI(t)
		client.TLS = mustTLS(t, p.host1.Client)
		client.TLS.ServerName = "127.0.0.1"
		server.TLS = mustTLS(t, p.host2.Server)
		a, b := tcpPair(t)
		return a, b, client, server
	}},
}

func mustTLS(t testing.TB, f func() (*tls.Config, error)) *tls.Config {
	t.Helper()
	c, err := f()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tcpPair returns both ends of one loopback TCP connection.
func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	return a, b
}

type result struct {
	s   *Session
	err error
}

// establishPair runs Client and Server concurrently over raw connections.
func establishPair(ctx context.Context, a, b net.Conn, ccfg, scfg Config) (client, server result) {
	done := make(chan result, 1)
	go func() {
		s, err := Server(ctx, b, scfg)
		done <- result{s, err}
	}()
	s, err := Client(ctx, a, ccfg)
	client = result{s, err}
	if err != nil {
		a.Close() // unblock a server still waiting for us
	}
	server = <-done
	return client, server
}

// sessionPair returns a connected client (source) and server (destination).
func sessionPair(t *testing.T, tr transport) (*Session, *Session) {
	t.Helper()
	return sessionPairWith(t, tr, func(*Config) {})
}

// sessionPairWith is sessionPair with the server's configuration changed by
// mod.
func sessionPairWith(t *testing.T, tr transport, mod func(server *Config)) (*Session, *Session) {
	t.Helper()
	server := testConfig(RoleDestination)
	mod(&server)
	a, b, ccfg, scfg := tr.connect(t, testConfig(RoleSource), server)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, s := establishPair(ctx, a, b, ccfg, scfg)
	if c.err != nil || s.err != nil {
		t.Fatalf("establish: client %v, server %v", c.err, s.err)
	}
	t.Cleanup(func() { c.s.Close(); s.s.Close() })
	return c.s, s.s
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// readWriter joins a crafted input with a buffer that collects the
// receiver's reply.
type readWriter struct {
	io.Reader
	io.Writer
}

// tunnelEntry has c forward the connections made to a new loopback
// listener over tunnel streams called name, and returns the listener's
// address.
func tunnelEntry(t *testing.T, ctx context.Context, c *Session, name string) string {
	t.Helper()
	entry, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go c.Forward(ctx, entry, name, nil)
	return entry.Addr().String()
}

// dialTunnel connects to a new tunnel entry of c (tunnelEntry).
func dialTunnel(t *testing.T, ctx context.Context, c *Session, name string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", tunnelEntry(t, ctx, c, name))
	if err != nil {
		t.Fatal(err)
	}
	return conn
}
