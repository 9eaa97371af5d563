package netrewire

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// Silence takes the network namespace of process pid off the network:
// every interface but the loopback goes down. A copy about to be removed
// then neither answers for its addresses nor sends a frame that would draw
// the switch's traffic for them to this host while the original takes
// them back on the other.
func Silence(pid int) error { return inNetns(pid, LinksDown) }

// LinksDown sets every interface of the calling thread's network namespace
// but the loopback down, and looks again until a fresh list shows none
// up: an interface may come up meanwhile (Docker wiring a reservation),
// and once, in a test, one stayed up after a single pass.
func LinksDown() error {
	var up []string
	for range 5 {
		links, err := netlink.LinkList()
		if errors.Is(err, netlink.ErrDumpInterrupted) {
			up = []string{"(the list changed as it was read)"}
			continue // links changed as they were listed: list again
		}
		if err != nil {
			return err
		}
		up = up[:0]
		for _, l := range links {
			a := l.Attrs()
			if a.Flags&net.FlagUp == 0 || a.Name == "lo" {
				continue
			}
			up = append(up, a.Name)
			if err := netlink.LinkSetDown(l); err != nil {
				return fmt.Errorf("set %s down: %w", a.Name, err)
			}
		}
		if len(up) == 0 {
			return nil
		}
	}
	return fmt.Errorf("interfaces still up after setting them down: %v", up)
}
