// Package netrewire carries a container's network identity across a
// migration. A container that keeps its IP and MAC on a shared L2 network
// moves to another switch port; until it speaks, switches (the lab's bridge,
// real ones) keep sending its traffic to the old port. Announce makes it
// speak at once, as hypervisors do after a live migration: gratuitous ARP
// from every IPv4 address of every interface in its network namespace.
package netrewire

import (
	"encoding/binary"
	"errors"
	"net"
)

// ErrNoAddress reports a namespace with nothing to announce.
var ErrNoAddress = errors.New("netrewire: no IPv4 address with a MAC to announce")

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
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				out = append(out, Announcement{Interface: ifc.Name, Index: ifc.Index, MAC: ifc.HardwareAddr, IP: ipn.IP.To4()})
			}
		}
	}
	return out
}
