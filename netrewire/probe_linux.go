package netrewire

import (
	"bytes"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// Holders asks, by an ARP probe on the interface named ifname of this
// network namespace, who holds ip, and returns the hardware addresses that
// answered within wait (none: the address is free, or its holder is down).
func Holders(ifname string, ip net.IP, wait time.Duration) ([]net.HardwareAddr, error) {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("netrewire: %w", err)
	}
	if len(ifc.HardwareAddr) != 6 || ip.To4() == nil {
		return nil, fmt.Errorf("netrewire: cannot probe %s on %s", ip, ifname)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return nil, fmt.Errorf("netrewire: packet socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifc.Index}); err != nil {
		return nil, fmt.Errorf("netrewire: bind to %s: %w", ifname, err)
	}
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: ifc.Index, Halen: 6}
	copy(to.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if err := unix.Sendto(fd, probe(ifc.HardwareAddr, ip), 0, to); err != nil {
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
		if mac := holder(buf[:n], ip); mac != nil && !bytes.Equal(mac, ifc.HardwareAddr) && !containsMAC(out, mac) {
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
