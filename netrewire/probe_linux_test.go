package netrewire

import (
	"bytes"
	"net"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/dockmove/dockmove/internal/lab/labtest"
)

// The DAD solicitation carries a valid ICMPv6 checksum, asks for ip from
// the unspecified address, to ip's solicited-node group.
func TestSolicitFrame(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	ip := net.ParseIP("fd78::3:1234")
	f := solicit(mac, ip)
	if !bytes.Equal(f[0:6], []byte{0x33, 0x33, 0xff, 0x03, 0x12, 0x34}) || !bytes.Equal(f[6:12], mac) {
		t.Fatalf("ethernet header % x", f[:14])
	}
	src, dst, icmp := net.IP(f[22:38]), net.IP(f[38:54]), f[54:]
	if !src.Equal(net.IPv6unspecified) || !dst.Equal(net.ParseIP("ff02::1:ff03:1234")) || f[20] != 58 || f[21] != 255 {
		t.Fatalf("IPv6 header % x", f[14:54])
	}
	if icmpv6Checksum(src, dst, icmp) != 0 {
		t.Fatalf("checksum does not verify: % x", icmp)
	}
	if icmp[0] != 135 || !net.IP(icmp[8:24]).Equal(ip) {
		t.Fatalf("solicitation % x", icmp)
	}
}

// A real kernel answers the solicitation: an address held on the other end
// of a veth pair is found, with that end's MAC; a free one is not. Real
// network namespaces (needs root).
func TestHoldersIPv6OnARealLink(t *testing.T) {
	labtest.RequireRoot(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { netns.Set(orig); orig.Close() }()
	ns, err := netns.New() // this thread now lives in it
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	for _, args := range [][]string{
		{"link", "add", "a0", "type", "veth", "peer", "name", "b0"},
		{"link", "set", "a0", "up"}, {"link", "set", "b0", "up"},
		{"-6", "addr", "add", "fd99::5/64", "dev", "b0", "nodad"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	b0, err := net.InterfaceByName("b0")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // links up, multicast groups joined
	got, err := Holders("a0", net.ParseIP("fd99::5"), 500*time.Millisecond)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0], b0.HardwareAddr) {
		t.Fatalf("holders of fd99::5: %v, %v; want %v", got, err, b0.HardwareAddr)
	}
	if got, err := Holders("a0", net.ParseIP("fd99::6"), 300*time.Millisecond); err != nil || len(got) != 0 {
		t.Fatalf("holders of a free address: %v, %v", got, err)
	}
}
