package netrewire

import (
	"bytes"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// Holders asks who holds ip on the interface named ifname of this network
// namespace, and returns the hardware addresses that answered within wait
// (none: the address is free, or its holder is down). IPv4: an ARP probe
// (RFC 5227); IPv6: a duplicate address detection's neighbour
// solicitation (RFC 4862), which a holder answers to all nodes.
func Holders(ifname string, ip net.IP, wait time.Duration) ([]net.HardwareAddr, error) {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("netrewire: %w", err)
	}
	if len(ifc.HardwareAddr) != 6 || ip.To16() == nil {
		return nil, fmt.Errorf("netrewire: cannot probe %s on %s", ip, ifname)
	}
	proto, frame, dst := uint16(unix.ETH_P_ARP), probe(ifc.HardwareAddr, ip), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	answer := holder
	if ip.To4() == nil {
		proto, frame, dst, answer = unix.ETH_P_IPV6, solicit(ifc.HardwareAddr, ip), frame6Dst(ip), holder6
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(proto)))
	if err != nil {
		return nil, fmt.Errorf("netrewire: packet socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifc.Index}); err != nil {
		return nil, fmt.Errorf("netrewire: bind to %s: %w", ifname, err)
	}
	to := &unix.SockaddrLinklayer{Protocol: htons(proto), Ifindex: ifc.Index, Halen: 6}
	copy(to.Addr[:], dst)
	if err := unix.Sendto(fd, frame, 0, to); err != nil {
		return nil, fmt.Errorf("netrewire: probe on %s: %w", ifname, err)
	}
	var out []net.HardwareAddr
	buf := make([]byte, 128)
	for deadline := time.Now().Add(wait); ; {
		left := time.Until(deadline)
		if left <= 0 {
			return out, nil
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return out, fmt.Errorf("netrewire: %w", err)
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("netrewire: receive on %s: %w", ifname, err)
		}
		if mac := answer(buf[:n], ip); mac != nil && !bytes.Equal(mac, ifc.HardwareAddr) && !containsMAC(out, mac) {
			out = append(out, mac)
		}
	}
}

func containsMAC(list []net.HardwareAddr, mac net.HardwareAddr) bool {
	for _, m := range list {
		if bytes.Equal(m, mac) {
			return true
		}
	}
	return false
}
