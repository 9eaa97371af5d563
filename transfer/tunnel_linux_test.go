package transfer

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const tunnelHelperEnv = "DOCKMOVE_TUNNEL_HELPER_ADDR"

// TestTunnelHelperProcess is not a test: run by
// TestTunnelResetsServiceWhenAgentDies as the agent that gets killed, it
// tunnels a client's connection to the service at $DOCKMOVE_TUNNEL_HELPER_ADDR
// and waits to be killed.
func TestTunnelHelperProcess(t *testing.T) {
	addr := os.Getenv(tunnelHelperEnv)
	if addr == "" {
		return
	}
	c, s := sessionPair(t, transports[0])
	ctx := testContext(t)
	go s.ServeTunnel(ctx, "pages", addr, TunnelOptions{})
	conn := dialTunnel(t, ctx, c, "pages")
	conn.Write([]byte("hello"))
	select {}
}

// TestTunnelResetsServiceWhenAgentDies kills (SIGKILL) a process serving a
// tunnel: the service behind it must see a connection reset, not an orderly
// end. CRIU's page server takes an orderly end for "every page delivered"
// and kills the original container, which lost it when migrate-src died.
func TestTunnelResetsServiceWhenAgentDies(t *testing.T) {
	svc, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	helper := exec.Command(os.Args[0], "-test.run=^TestTunnelHelperProcess$", "-test.timeout=2m")
	helper.Env = append(os.Environ(), tunnelHelperEnv+"="+svc.Addr().String())
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Process.Kill()
	svc.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
	conn, err := svc.Accept()
	if err != nil {
		t.Fatalf("the helper never connected: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	hello := make([]byte, 5)
	if _, err := io.ReadFull(conn, hello); err != nil || string(hello) != "hello" {
		t.Fatalf("through the tunnel: %q, %v", hello, err)
	}
	helper.Process.Kill()
	helper.Wait()
	_, err = conn.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after the agent died the service read %v, want a connection reset", err)
	}
}

// socketConn is one end of a connected Unix stream socket pair as a
// net.Conn, and the other end as a file.
func socketConn(t *testing.T) (net.Conn, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fds[0]), "a")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	return c, os.NewFile(uintptr(fds[1]), "b")
}

// Carry takes one local connection (a socket pair's end, as a dump's page
// socket) over a tunnel stream to the service ServeTunnelTo dials (another
// pair, as a page server's): bytes pass both ways, each half close is
// passed on, the bytes are counted and what comes back can be wrapped; a
// second stream the peer opens gets a dial of its own, whose failure ends
// ServeTunnelTo with it.
func TestCarryToServeTunnelTo(t *testing.T) {
	c, s := sessionPair(t, transports[1])
	ctx := testContext(t)
	var dials atomic.Int32
	served := make(chan error, 1)
	go func() {
		served <- s.ServeTunnelTo(ctx, "pages", func(context.Context) (net.Conn, error) {
			if dials.Add(1) > 1 {
				return nil, errors.New("one page server only")
			}
			conn, svc := socketConn(t)
			go func() {
				// The service: an upper-casing echo until the half close.
				defer svc.Close()
				b, _ := io.ReadAll(svc)
				svc.Write([]byte(strings.ToUpper(string(b))))
			}()
			return conn, nil
		}, TunnelOptions{})
	}()
	local, dump := socketConn(t)
	msg := strings.Repeat("pages ", 100000)
	var counted atomic.Int64
	carried := make(chan error, 1)
	go func() {
		carried <- c.Carry(ctx, local, "pages", TunnelOptions{Counted: func(n int64) { counted.Store(n) },
			FromPeer: func(r io.Reader) io.Reader { return io.MultiReader(r, strings.NewReader("!")) }})
	}()
	wrote := make(chan struct{})
	go func() { defer close(wrote); dump.Write([]byte(msg)); unix.Shutdown(int(dump.Fd()), unix.SHUT_WR) }()
	got, err := io.ReadAll(dump)
	<-wrote
	dump.Close()
	if err != nil || string(got) != strings.ToUpper(msg)+"!" {
		t.Fatalf("%d bytes back (want %d), %v", len(got), len(msg)+1, err)
	}
	if err := <-carried; err != nil || counted.Load() != int64(len(msg)) {
		t.Fatalf("Carry: %v, counted %d of %d", err, counted.Load(), len(msg))
	}
	second, _ := socketConn(t)
	go c.Carry(ctx, second, "pages", TunnelOptions{})
	if err := <-served; err == nil || !strings.Contains(err.Error(), "one page server only") {
		t.Fatalf("ServeTunnelTo after a failed dial: %v", err)
	}
}

// TestPeerWaitCountsTunnelTraffic: a receiver waits for a stream the peer
// opens after long work whose bytes flow through a tunnel meanwhile (a
// dump sending its pages to this host's page server): the peer wait
// bounds the silence, not the work. Silent, the wait ends as before.
func TestPeerWaitCountsTunnelTraffic(t *testing.T) {
	const wait = 300 * time.Millisecond
	c, s := sessionPairWith(t, transports[1], func(cfg *Config) { cfg.PeerWaitTimeout = wait })
	ctx := testContext(t)
	go s.ServeTunnelTo(ctx, "pages", func(context.Context) (net.Conn, error) {
		conn, svc := socketConn(t)
		go io.Copy(io.Discard, svc)
		return conn, nil
	}, TunnelOptions{})
	local, dump := socketConn(t)
	go c.Carry(ctx, local, "pages", TunnelOptions{})
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "inventory.img"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		// Pages for four times the wait, then the stream.
		for end := time.Now().Add(4 * wait); time.Now().Before(end); time.Sleep(wait / 6) {
			dump.Write([]byte("page"))
		}
		c.SendDir(ctx, "images", src)
	}()
	start := time.Now()
	if _, err := s.ReceiveDir(ctx, "images", t.TempDir(), ImagePolicy()); err != nil {
		t.Fatalf("after %v of pages: %v", time.Since(start).Round(time.Millisecond), err)
	}
	// Silent now: the next wait ends after its time.
	ctx2, cancel := s.PeerWait(ctx, wait, ErrIdle)
	defer cancel()
	<-ctx2.Done()
	if d := time.Since(start); !errors.Is(context.Cause(ctx2), ErrIdle) {
		t.Fatalf("silent wait ended by %v after %v", context.Cause(ctx2), d)
	}
}
