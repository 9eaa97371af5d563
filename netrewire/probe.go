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

// solicitedNode is ip's solicited-node multicast address (ff02::1:ffXX:XXXX).
func solicitedNode(ip net.IP) net.IP {
	a := net.ParseIP("ff02::1:ff00:0")
	copy(a[13:], ip.To16()[13:])
	return a
}

// frame6Dst is the Ethernet address of ip's solicited-node group.
func frame6Dst(ip net.IP) []byte {
	return append([]byte{0x33, 0x33}, solicitedNode(ip)[12:]...)
}

// solicit builds the frame of a duplicate address detection's neighbour
// solicitation for ip from mac: from the unspecified address (the sender
// claims nothing), to ip's solicited-node group, hop limit 255.
func solicit(mac net.HardwareAddr, ip net.IP) []byte {
	dst := solicitedNode(ip)
	icmp := make([]byte, 24)
	icmp[0] = 135 // neighbour solicitation
	copy(icmp[8:], ip.To16())
	src := net.IPv6unspecified
	binary.BigEndian.PutUint16(icmp[2:], icmpv6Checksum(src, dst, icmp))
	f := make([]byte, 0, 14+40+len(icmp))
	f = append(f, frame6Dst(ip)...)
	f = append(f, mac...)
	f = binary.BigEndian.AppendUint16(f, 0x86dd)
	f = append(f, 0x60, 0, 0, 0) // version 6
	f = binary.BigEndian.AppendUint16(f, uint16(len(icmp)))
	f = append(f, 58, 255) // next header ICMPv6, hop limit
	f = append(f, src.To16()...)
	f = append(f, dst...)
	return append(f, icmp...)
}

// icmpv6Checksum is the checksum of ICMPv6 message m from src to dst (RFC
// 4443 2.3, over the IPv6 pseudo-header).
func icmpv6Checksum(src, dst net.IP, m []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src.To16())
	add(dst.To16())
	add([]byte{0, 0, byte(len(m) >> 8), byte(len(m)), 0, 0, 0, 58})
	add(m)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// holder6 returns, from a neighbour advertisement for ip, the hardware
// address ip is at (its target link-layer address option, else the
// frame's sender), or nil.
func holder6(frame []byte, ip net.IP) net.HardwareAddr {
	const icmp = 14 + 40
	if len(frame) < icmp+24 || binary.BigEndian.Uint16(frame[12:14]) != 0x86dd || frame[20] != 58 || frame[icmp] != 136 ||
		!net.IP(frame[icmp+8:icmp+24]).Equal(ip) {
		return nil
	}
	for o := icmp + 24; o+8 <= len(frame) && frame[o+1] > 0; o += int(frame[o+1]) * 8 {
		if frame[o] == 2 && frame[o+1] == 1 {
			return net.HardwareAddr(bytes.Clone(frame[o+2 : o+8]))
		}
	}
	return net.HardwareAddr(bytes.Clone(frame[6:12]))
}
