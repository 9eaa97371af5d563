package criu

import (
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/internal/lab/labtest"
)

// TestRepairedSocketsAreReleased puts one end of a real loopback TCP
// connection in repair mode, as a dump leaves it, and has
// ReleaseRepairedSockets find it in this process's file table: released,
// the connection carries data again; sockets never repaired are not
// counted.
func TestRepairedSocketsAreReleased(t *testing.T) {
	labtest.RequireRoot(t) // TCP_REPAIR needs CAP_NET_ADMIN
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	raw, err := server.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	control := func(f func(fd int)) {
		if err := raw.Control(func(fd uintptr) { f(int(fd)) }); err != nil {
			t.Fatal(err)
		}
	}
	control(func(fd int) {
		if inRepair(fd) {
			t.Fatal("a fresh connection reads as in repair mode")
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_REPAIR, unix.TCP_REPAIR_ON); err != nil {
			t.Fatalf("repair mode on: %v", err)
		}
		if !inRepair(fd) {
			t.Fatal("a connection in repair mode does not read as such")
		}
	})
	n, err := ReleaseRepairedSockets(os.Getpid())
	if err != nil || n != 1 {
		t.Fatalf("released %d sockets (%v), want 1", n, err)
	}
	control(func(fd int) {
		if inRepair(fd) {
			t.Fatal("still in repair mode after the release")
		}
	})
	if _, err := server.Write([]byte("again")); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "again" {
		t.Fatalf("after the release the client read %q, %v", buf, err)
	}
	if n, err := ReleaseRepairedSockets(os.Getpid()); err != nil || n != 0 {
		t.Fatalf("a second release found %d sockets (%v), want 0", n, err)
	}
}

func TestParentOfStatLines(t *testing.T) {
	for _, c := range []struct {
		line string
		want int
		ok   bool
	}{
		{"42 (sh) S 7 42 42 0 -1", 7, true},
		{"43 (a b) c)) R 1 43 43 0", 1, true},
		{"44 (x", 0, false},
		{"45 (y) S", 0, false},
	} {
		got, ok := parentOf(c.line)
		if got != c.want || ok != c.ok {
			t.Errorf("parentOf(%q) = %d, %v; want %d, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}
