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
	errc := make(chan error, 1)
	go func() {
		// This thread joins the container's namespace and is never handed
		// back to the scheduler: it exits with the goroutine.
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
			ifaces, err := net.Interfaces()
			if err != nil {
				return err
			}
			out = announcements(ifaces, func(i net.Interface) ([]net.Addr, error) { return i.Addrs() })
			if len(out) == 0 {
				return ErrNoAddress
			}
			return send(out, count, gap)
		}()
	}()
	return out, <-errc
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
