package netrewire

import (
	"fmt"
	"net"
	"os"

	"github.com/vishvananda/netlink"
)

// Silence takes the network namespace of process pid off the network:
// every interface but the loopback goes down. A copy about to be removed
// then neither answers for its addresses nor sends a frame that would draw
// the switch's traffic for them to this host while the original takes
// them back on the other.
func Silence(pid int) error { return inNetns(pid, LinksDown) }

// SilenceNetns is Silence for the network namespace open in ns (a
// /proc/PID/ns/net file): the caller checks, on that very file, that it is
// the namespace it means.
func SilenceNetns(ns *os.File) error { return inNetnsFile(ns, LinksDown) }

// LinksDown sets every interface of the calling thread's network namespace
// but the loopback down.
func LinksDown() error {
	links, err := netlink.LinkList()
	if err != nil {
		return err
	}
	for _, l := range links {
		a := l.Attrs()
		if a.Flags&net.FlagUp == 0 || a.Name == "lo" {
			continue
		}
		if err := netlink.LinkSetDown(l); err != nil {
			return fmt.Errorf("set %s down: %w", a.Name, err)
		}
	}
	return nil
}
