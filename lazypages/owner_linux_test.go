package lazypages

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPageTunnelAdmitsOnlyTheDaemon: a local process that connects to the
// page tunnel's entrance first is refused; the process the listener was
// made for (here a shell standing in for criu lazy-pages) is admitted.
// Real sockets and processes.
func TestPageTunnelAdmitsOnlyTheDaemon(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rejected := make(chan string, 4)
	ln := newOwnedListener(tcp, func(addr string, err error) { rejected <- err.Error() })
	defer ln.Close()
	port := strconv.Itoa(tcp.Addr().(*net.TCPAddr).Port)

	intruder, err := net.Dial("tcp", tcp.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	daemon := exec.Command("bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/"+port+"; read -t 10 line <&3")
	if err := daemon.Start(); err != nil {
		t.Fatalf("bash: %v", err)
	}
	defer daemon.Process.Kill()
	ln.setPid(daemon.Process.Pid)

	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	select {
	case msg := <-rejected:
		if !strings.Contains(msg, "not the lazy-pages daemon's") {
			t.Fatalf("intruder refused for %q", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the intruder's connection was not refused")
	}
	select {
	case c := <-accepted:
		c.Write([]byte("bye\n"))
		c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon's connection was not admitted")
	}
	intruder.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := intruder.Read(make([]byte, 1)); err == nil {
		t.Fatal("the intruder read from the tunnel")
	}
}

// TestDaemonConnectingBeforeItsPIDIsKnownIsAdmitted: the daemon connects
// as soon as it runs, which may be before the agent that started it has
// recorded its PID; its connection waits for the PID instead of being
// refused (which left the daemon without a page server and hung a
// migration in CI). Real sockets and processes.
func TestDaemonConnectingBeforeItsPIDIsKnownIsAdmitted(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newOwnedListener(tcp, func(addr string, err error) { t.Errorf("refused %s: %v", addr, err) })
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	port := strconv.Itoa(tcp.Addr().(*net.TCPAddr).Port)
	daemon := exec.Command("bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/"+port+"; read -t 10 line <&3")
	if err := daemon.Start(); err != nil {
		t.Fatalf("bash: %v", err)
	}
	defer daemon.Process.Kill()
	time.Sleep(300 * time.Millisecond) // connected, its PID not yet recorded
	ln.setPid(daemon.Process.Pid)
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon's connection was not admitted")
	}
}
