// Package reserve keeps a moved container's address from being handed out
// again by the host it came from.
//
// A container on a network that several hosts share (macvlan, ipvlan)
// takes its address along when it moves. Each host's Docker allocates
// addresses on such a network from its own range (--ip-range), knowing
// nothing of the others: the host whose range holds the address (the
// address's home) would give it to its next container while the moved
// one answers for it elsewhere, two interfaces with one address on one
// link. So when a container leaves its home, the home keeps a reservation:
// a container of its own on that network, holding the address (and, with
// Docker before 26, its IPv6 address on a dual-stack network) in Docker's
// allocator, whose interfaces are down and which answers no ARP (the moved
// container stays the only one on the link that answers for it). When the
// container comes home, the reservation makes way for it; when it moves
// between other hosts, which allocate only from their own ranges, nothing
// changes. A reservation outlives the moved container: `docker rm -f` it
// on the home host to free the address.
//
// The reservation runs the agent's own binary (static, bind-mounted from
// the agent's work directory) with HoldArg: any image serves as its root.
package reserve

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dockmove/dockmove/netrewire"
)

// HoldArg, as the agent's first argument, runs Hold: how a reservation
// container starts it.
const HoldArg = "hold-address"

// Label marks a reservation container; its value is "NETWORK/ADDRESS"
// (the IPv4 address).
const Label = "dockmove.reservation"

// LabelIPv6 holds the IPv6 address a reservation holds too, on a
// dual-stack network.
const LabelIPv6 = "dockmove.reservation.ipv6"

// HolderPath is where the binary is mounted in a reservation container.
const HolderPath = "/dockmove-hold"

// Name is the reservation container's name for address ip on network.
func Name(network, ip string) string {
	return "dockmove-reserve-" + network + "-" + strings.ReplaceAll(ip, ":", "-")
}

// Value is Label's value for address ip on network.
func Value(network, ip string) string { return network + "/" + ip }

// Hold keeps every interface of its network namespace but loopback down
// until SIGTERM or SIGINT: Docker's allocator counts the address as used,
// and nobody on the link hears from it. It checks again every second, in
// case an interface comes (back) up.
func Hold() int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if err := netrewire.LinksDown(); err != nil {
			fmt.Fprintln(os.Stderr, "dockmove reservation:", err)
		}
		select {
		case <-sig:
			return 0
		case <-tick.C:
		}
	}
}

// Install copies the running binary to dir (made if missing) for
// reservation containers to run, unless the same is there, and returns its
// path. A reservation's dockerd must see dir: the agent's work directory.
func Install(dir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "dockmove-hold")
	want, err := digest(self)
	if err != nil {
		return "", err
	}
	if have, err := digest(path); err == nil && bytes.Equal(have, want) {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	src, err := os.Open(self)
	if err != nil {
		return "", err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(dir, ".dockmove-hold-")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	// A running reservation keeps the old file: a rename leaves it be.
	return path, os.Rename(tmp.Name(), path)
}

func digest(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}
