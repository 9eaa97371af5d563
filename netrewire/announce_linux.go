package netrewire

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Announce sends gratuitous ARP for every IPv4 address, and an unsolicited
// neighbour advertisement for every global IPv6 one, in the network
// namespace of pid, count times spaced by gap, and returns what it
// announced.
func Announce(pid, count int, gap time.Duration) ([]Announcement, error) {
	var out []Announcement
	err := inNetns(pid, func() (err error) {
		if out, err = list(); err != nil {
			return err
		}
		return send(out, count, gap)
	})
	return out, err
}

// Addresses lists the IPv4 and global IPv6 addresses in the network
// namespace of pid, with the interface holding each: what Announce would
// announce.
func Addresses(pid int) ([]Announcement, error) {
	var out []Announcement
	err := inNetns(pid, func() (err error) {
		out, err = list()
		return err
	})
	return out, err
}

func list() ([]Announcement, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := announcements(ifaces, func(i net.Interface) ([]net.Addr, error) { return i.Addrs() })
	if len(out) == 0 {
		return nil, ErrNoAddress
	}
	return out, nil
}

// inNetns runs fn on a thread in the network namespace of pid. The thread
// is never handed back to the scheduler: it exits with its goroutine. It
// goes back to its own namespace first all the same: when that thread is
// the process's main thread, Go parks it instead of ending it, and
// /proc/self/net (the main thread's) would show the container's tables for
// the rest of the agent's life (seen: the page tunnel's owner check, which
// read /proc/net/tcp, refused the lazy-pages daemon after an announce).
func inNetns(pid int, fn func() error) error {
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return err
	}
	defer ns.Close()
	return inNetnsFile(ns, fn)
}

// inNetnsFile is inNetns for the network namespace open in ns.
func inNetnsFile(ns *os.File, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- func() error {
			orig, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				return err
			}
			defer orig.Close()
			if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("netrewire: setns: %w", err)
			}
			defer unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET)
			return fn()
		}()
	}()
	return <-errc
}

func send(as []Announcement, count int, gap time.Duration) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ARP)))
	if err != nil {
		return fmt.Errorf("netrewire: packet socket: %w", err)
	}
	defer unix.Close(fd)
	for i := 0; i < count; i++ {
		if i > 0 {
			time.Sleep(gap)
		}
		for _, a := range as {
			if a.IP.To4() == nil {
				if err := advertise(a); err != nil {
					return fmt.Errorf("netrewire: advertise %s on %s: %w", a.IP, a.Interface, err)
				}
				continue
			}
			to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: a.Index, Halen: 6}
			copy(to.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
			if err := unix.Sendto(fd, garp(a.MAC, a.IP), 0, to); err != nil {
				return fmt.Errorf("netrewire: send on %s: %w", a.Interface, err)
			}
		}
	}
	return nil
}

// advertise sends one unsolicited neighbour advertisement for a's IPv6
// address to all nodes on its link, from that address, with the hop limit
// of 255 that receivers require.
func advertise(a Announcement) error {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_ICMPV6)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for _, o := range [][2]int{{unix.IPV6_MULTICAST_HOPS, 255}, {unix.IPV6_UNICAST_HOPS, 255}, {unix.IPV6_MULTICAST_IF, a.Index}} {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, o[0], o[1]); err != nil {
			return err
		}
	}
	from := &unix.SockaddrInet6{}
	copy(from.Addr[:], a.IP.To16())
	if err := unix.Bind(fd, from); err != nil {
		return err
	}
	to := &unix.SockaddrInet6{ZoneId: uint32(a.Index)}
	copy(to.Addr[:], net.IPv6linklocalallnodes)
	return unix.Sendto(fd, neighbourAdvert(a.MAC, a.IP), 0, to)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
