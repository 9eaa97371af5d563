package netrewire

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Announce sends gratuitous ARP, count times spaced by gap, for every IPv4
// address in the network namespace of pid, and returns what it announced.
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

// Addresses lists the IPv4 addresses in the network namespace of pid, with
// the interface holding each: what Announce would announce.
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
// is never handed back to the scheduler: it exits with its goroutine.
func inNetns(pid int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- func() error {
			ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
			if err != nil {
				return err
			}
			defer ns.Close()
			if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("netrewire: setns: %w", err)
			}
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
			to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ARP), Ifindex: a.Index, Halen: 6}
			copy(to.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
			if err := unix.Sendto(fd, garp(a.MAC, a.IP), 0, to); err != nil {
				return fmt.Errorf("netrewire: send on %s: %w", a.Interface, err)
			}
		}
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
