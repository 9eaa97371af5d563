package netrewire

import (
	"bytes"
	"encoding/binary"
	"net"
)

// probe builds an ARP probe (RFC 5227) for ip from mac: a request whose
// sender address is 0.0.0.0, so that asking pollutes no neighbour's cache.
func probe(mac net.HardwareAddr, ip net.IP) []byte {
	f := garp(mac, ip)
	copy(f[28:32], []byte{0, 0, 0, 0}) // sender protocol address
	return f
}

// holder returns the sender hardware address of an ARP frame in which ip
// speaks for itself (a reply from ip, or ip's own request or announcement),
// or nil.
func holder(frame []byte, ip net.IP) net.HardwareAddr {
	if len(frame) < 42 || binary.BigEndian.Uint16(frame[12:14]) != 0x0806 ||
		binary.BigEndian.Uint16(frame[14:16]) != 1 || binary.BigEndian.Uint16(frame[16:18]) != 0x0800 ||
		frame[18] != 6 || frame[19] != 4 {
		return nil
	}
	if !bytes.Equal(frame[28:32], ip.To4()) {
		return nil
	}
	return net.HardwareAddr(bytes.Clone(frame[22:28]))
}
