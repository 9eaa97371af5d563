package transfer

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
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
