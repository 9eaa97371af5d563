package migrate

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSocketKind: the sockets CRIU dumps pass; the others are named.
func TestSocketKind(t *testing.T) {
	for _, c := range []struct {
		domain, typ, proto int
		want               string // "" for a socket CRIU dumps
	}{
		{unix.AF_UNIX, unix.SOCK_STREAM, 0, ""},
		{unix.AF_UNIX, unix.SOCK_SEQPACKET, 0, ""},
		{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, ""},
		{unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_UDP, ""},
		{unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_ICMP, ""},
		{unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_ICMPV6, ""},
		{unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_UDPLITE, ""},
		{unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_SCTP, ""}, // raw: any protocol
		{unix.AF_PACKET, unix.SOCK_RAW, 768, ""},
		{unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE, ""},
		{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP, "a Multipath TCP socket"},
		{unix.AF_INET6, unix.SOCK_STREAM, unix.IPPROTO_MPTCP, "a Multipath TCP socket"},
		{unix.AF_INET, unix.SOCK_SEQPACKET, unix.IPPROTO_SCTP, "an SCTP socket"},
		{unix.AF_INET, unix.SOCK_DCCP, unix.IPPROTO_DCCP, "a DCCP socket"},
		{unix.AF_INET, unix.SOCK_STREAM, 253, "an Internet socket of protocol 253"},
		{unix.AF_VSOCK, unix.SOCK_STREAM, 0, "a socket of family AF_VSOCK"},
		{unix.AF_ALG, unix.SOCK_SEQPACKET, 0, "a socket of family AF_ALG (the kernel's crypto API)"},
		{99, unix.SOCK_STREAM, 0, "a socket of family 99"},
		{unix.AF_UNIX, unix.SOCK_RAW, 0, "a Unix socket of type 3"},
	} {
		what, ok := socketKind(c.domain, c.typ, c.proto)
		if ok != (c.want == "") || what != c.want {
			t.Errorf("socketKind(%d, %d, %d) = %q, %v; want %q", c.domain, c.typ, c.proto, what, ok, c.want)
		}
	}
}

// TestUnsupportedSocketsOfARealProcess: this process opens sockets CRIU
// dumps (TCP, UDP, Unix) and two it cannot (an MPTCP listener, a vsock);
// the check names exactly the two, by descriptor, and leaves every socket
// working (the TCP listener still accepts).
func TestUnsupportedSocketsOfARealProcess(t *testing.T) {
	mptcp, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_MPTCP)
	if err != nil {
		t.Skipf("this kernel makes no MPTCP socket (CONFIG_MPTCP or net.mptcp.enabled off): %v", err)
	}
	defer unix.Close(mptcp)
	if err := unix.Bind(mptcp, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(mptcp, 1); err != nil {
		t.Fatal(err)
	}
	want := map[int]string{mptcp: mptcpSocket}
	if vsock, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0); err == nil {
		defer unix.Close(vsock)
		want[vsock] = "a socket of family AF_VSOCK"
	} else if !errors.Is(err, unix.EAFNOSUPPORT) {
		t.Fatal(err)
	}
	var plain net.ListenConfig // Go listens with MPTCP by default where it can
	plain.SetMultipathTCP(false)
	ln, err := plain.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pair[0])
	defer unix.Close(pair[1])

	held, err := processSockets(unix.Getpid(), map[string]bool{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]string{}
	for _, h := range held {
		got[h.fd] = h.what
	}
	if len(got) != len(want) {
		t.Fatalf("named %v, want %v", got, want)
	}
	for fd, what := range want {
		if got[fd] != what {
			t.Fatalf("descriptor %d named %q, want %q (all: %v)", fd, got[fd], what, got)
		}
	}
	msg := socketsError(held).Error()
	if !errors.Is(socketsError(held), ErrCannotMove) || !strings.Contains(msg, "GODEBUG=multipathtcp=0") || !strings.Contains(msg, "close the others") {
		t.Fatalf("the refusal: %s", msg)
	}

	// The sockets looked at still work.
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			c.Close()
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := unix.GetsockoptInt(mptcp, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil {
		t.Fatal(err)
	}
}
