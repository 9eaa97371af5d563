package netrewire

import (
	"bytes"
	"errors"
	"net"
	"testing"
)

func TestGarpFrameLayout(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0x42, 0x0a, 0x4d, 0x00, 0x40}
	f := garp(mac, net.IPv4(10, 77, 0, 64))
	if len(f) != 42 {
		t.Fatalf("frame is %d bytes", len(f))
	}
	checks := []struct {
		name     string
		from, to int
		want     []byte
	}{
		{"broadcast destination", 0, 6, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"source MAC", 6, 12, mac},
		{"ethertype ARP", 12, 14, []byte{0x08, 0x06}},
		{"request", 20, 22, []byte{0, 1}},
		{"sender MAC", 22, 28, mac},
		{"sender IP", 28, 32, []byte{10, 77, 0, 64}},
		{"target IP equals sender", 38, 42, []byte{10, 77, 0, 64}},
	}
	for _, c := range checks {
		if !bytes.Equal(f[c.from:c.to], c.want) {
			t.Errorf("%s: % x, want % x", c.name, f[c.from:c.to], c.want)
		}
	}
}

func TestAnnouncementsSkipLoopbackDownLinkLocalAndFakeInterfaces(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	ifaces := []net.Interface{
		{Index: 1, Name: "lo", Flags: net.FlagUp | net.FlagLoopback},
		{Index: 2, Name: "eth0", Flags: net.FlagUp, HardwareAddr: mac},
		{Index: 3, Name: "eth1", Flags: 0, HardwareAddr: mac},
		{Index: 4, Name: "tun0", Flags: net.FlagUp},
	}
	addrs := map[string][]net.Addr{
		"lo":   {&net.IPNet{IP: net.IPv4(127, 0, 0, 1)}},
		"eth0": {&net.IPNet{IP: net.IPv4(10, 0, 0, 2)}, &net.IPNet{IP: net.ParseIP("fe80::1")}, &net.IPNet{IP: net.ParseIP("fd00::2")}},
		"eth1": {&net.IPNet{IP: net.IPv4(10, 0, 1, 2)}},
		"tun0": {&net.IPNet{IP: net.IPv4(10, 0, 2, 2)}},
	}
	got := announcements(ifaces, func(i net.Interface) ([]net.Addr, error) {
		if a, ok := addrs[i.Name]; ok {
			return a, nil
		}
		return nil, errors.New("none")
	})
	if len(got) != 2 || got[0].Interface != "eth0" || !got[0].IP.Equal(net.IPv4(10, 0, 0, 2)) || !got[1].IP.Equal(net.ParseIP("fd00::2")) {
		t.Fatalf("announcements: %+v (want eth0's IPv4 and global IPv6 addresses, not its link-local one)", got)
	}
}

// An unsolicited neighbour advertisement overrides caches and names the
// address's MAC (RFC 4861 4.4).
func TestNeighbourAdvertLayout(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0x42, 0x0a, 0x4e, 0x00, 0x40}
	ip := net.ParseIP("fd78::1:40")
	m := neighbourAdvert(mac, ip)
	want := append(append([]byte{136, 0, 0, 0, 0x20, 0, 0, 0}, ip.To16()...), append([]byte{2, 1}, mac...)...)
	if !bytes.Equal(m, want) {
		t.Fatalf("advertisement % x, want % x", m, want)
	}
}

// TestProbeAndHolderFrames: the probe asks for ip without claiming an
// address (sender 0.0.0.0); holder finds who speaks for ip in a frame and
// ignores frames where ip is only asked about.
func TestProbeAndHolderFrames(t *testing.T) {
	me := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	them := net.HardwareAddr{2, 0, 0, 0, 0, 2}
	ip := net.IPv4(10, 0, 0, 5)
	p := probe(me, ip)
	if !bytes.Equal(p[28:32], []byte{0, 0, 0, 0}) || !bytes.Equal(p[38:42], ip.To4()) || !bytes.Equal(p[22:28], me) {
		t.Fatalf("probe frame % x", p)
	}
	if holder(p, ip) != nil {
		t.Fatal("a probe for ip was taken for ip's holder speaking")
	}
	reply := garp(them, ip)
	reply[21] = 2 // a reply: sender them, ip
	if got := holder(reply, ip); !bytes.Equal(got, them) {
		t.Fatalf("holder of a reply: %v", got)
	}
	if holder(reply, net.IPv4(10, 0, 0, 6)) != nil || holder(reply[:40], ip) != nil {
		t.Fatal("holder answered for another address or a short frame")
	}
}
