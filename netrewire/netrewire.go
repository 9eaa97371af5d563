// Package netrewire carries a container's network identity across a
// migration. A container that keeps its IP and MAC on a shared L2 network
// moves to another switch port; until it speaks, switches (the lab's bridge,
// real ones) keep sending its traffic to the old port. Announce makes it
// speak at once, as hypervisors do after a live migration: gratuitous ARP
// from every IPv4 address, and unsolicited neighbour advertisements for
// every global IPv6 one, of every interface in its network namespace.
package netrewire

import (
	"encoding/binary"
	"errors"
	"net"
)

// ErrNoAddress reports a namespace with nothing to announce.
var ErrNoAddress = errors.New("netrewire: no address with a MAC to announce")

// Announcement is one address a container owns on one interface.
type Announcement struct {
	Interface string
	Index     int
	MAC       net.HardwareAddr
	IP        net.IP
}

// garp builds a gratuitous ARP request frame: broadcast, sender and target
// protocol address both ip, so every neighbour and switch updates its
// entry for (ip, mac).
func garp(mac net.HardwareAddr, ip net.IP) []byte {
	f := make([]byte, 0, 42)
	f = append(f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff) // destination
	f = append(f, mac...)                             // source
	f = binary.BigEndian.AppendUint16(f, 0x0806)      // ARP
	f = binary.BigEndian.AppendUint16(f, 1)           // Ethernet
	f = binary.BigEndian.AppendUint16(f, 0x0800)      // IPv4
	f = append(f, 6, 4)                               // address lengths
	f = binary.BigEndian.AppendUint16(f, 1)           // request
	f = append(f, mac...)
	f = append(f, ip.To4()...)
	f = append(f, 0, 0, 0, 0, 0, 0)
	return append(f, ip.To4()...)
}

// neighbourAdvert builds an unsolicited neighbour advertisement (ICMPv6
// type 136, RFC 4861) for ip at mac: the override flag set, so neighbours
// replace what they cached, and mac as the target link-layer address. The
// kernel fills in the checksum.
func neighbourAdvert(mac net.HardwareAddr, ip net.IP) []byte {
	m := make([]byte, 0, 32)
	m = append(m, 136, 0, 0, 0)  // type, code, checksum
	m = append(m, 0x20, 0, 0, 0) // override
	m = append(m, ip.To16()...)
	m = append(m, 2, 1) // option: target link-layer address, 8 bytes
	return append(m, mac...)
}

// announcements lists what to announce among ifaces.
func announcements(ifaces []net.Interface, addrs func(net.Interface) ([]net.Addr, error)) []Announcement {
	var out []Announcement
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagLoopback != 0 || ifc.Flags&net.FlagUp == 0 || len(ifc.HardwareAddr) != 6 {
			continue
		}
		as, err := addrs(ifc)
		if err != nil {
			continue
		}
		for _, a := range as {
			ipn, ok := a.(*net.IPNet)
			switch {
			case !ok:
			case ipn.IP.To4() != nil:
				out = append(out, Announcement{Interface: ifc.Name, Index: ifc.Index, MAC: ifc.HardwareAddr, IP: ipn.IP.To4()})
			case ipn.IP.IsGlobalUnicast():
				// IPv6: a neighbour advertisement; link-local addresses
				// are the interface's own, derived from its MAC.
				out = append(out, Announcement{Interface: ifc.Name, Index: ifc.Index, MAC: ifc.HardwareAddr, IP: ipn.IP})
			}
		}
	}
	return out
}
