//go:build linux

package migrate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/versions"

	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/netrewire"
	"github.com/dockmove/dockmove/protocol"
)

// The container's networks on the destination.
//
// Every network the container is on is attached here, in the order of its
// interfaces: the processes saw eth0, eth1, ... and a swap would send
// their traffic (and whatever they bound to a device) elsewhere. Docker 28
// (API 1.48) names an endpoint's interface when asked (docker.IfnameOption);
// older Dockers name them eth0, eth1, ... in an order of their own, which
// the destination predicts (dockerInterfaceOrder) and refuses before
// anything is frozen when it would differ. After the restore the names are
// checked in the container itself (verifyInterfaces).

// checkNetworks checks each of the container's networks here, and that the
// interfaces will come up as the source had them.
func (in *incoming) checkNetworks(ctx context.Context, nets []protocol.NetworkSpec) error {
	var why []string
	infos := make([]docker.NetworkInfo, len(nets))
	for i := range nets {
		var err error
		if infos[i], err = in.checkNetwork(ctx, &nets[i]); err != nil {
			why = append(why, err.Error())
		}
	}
	if len(why) == 0 && len(nets) > 0 {
		api, err := in.srv.dk.APIVersion(ctx)
		if err != nil {
			return err
		}
		if err := checkInterfaces(api, nets, infos, in.renumber); err != nil {
			why = append(why, err.Error())
		}
	}
	if len(why) > 0 {
		return errors.New(strings.Join(why, "; "))
	}
	return nil
}

// checkNetwork checks that network n exists here and that the container
// can keep its address on it, or, if the source allows, notes that it gets
// a new one.
func (in *incoming) checkNetwork(ctx context.Context, n *protocol.NetworkSpec) (docker.NetworkInfo, error) {
	info, err := in.srv.dk.Network(ctx, n.Name)
	if err != nil {
		return info, fmt.Errorf("the destination has no network %q for the container: %v", n.Name, err)
	}
	renumber := func() {
		if in.renumber == nil {
			in.renumber = map[string]bool{}
		}
		in.renumber[n.Name] = true
	}
	if info.Driver == "bridge" {
		// Docker's default bridge and user-defined bridges are NAT
		// networks of each host on its own: the address means nothing
		// here, and whoever reached the container through it (its
		// published ports, its neighbours on the bridge) is on the source.
		if !in.pre.AllowNewAddress {
			return info, fmt.Errorf("network %q is a bridge, private to each host: the container's address %s cannot follow it here "+
				"(migrate-src --allow-new-address accepts a new one: its listening sockets and published ports carry on, its TCP connections are closed)", n.Name, n.IPv4)
		}
		renumber()
		return info, nil
	}
	if subnet := info.Subnet; subnet != n.Subnet {
		if !in.pre.AllowNewAddress {
			return info, fmt.Errorf("network %q has subnet %s on the destination, %s on the source: the address %s cannot be kept "+
				"(migrate-src --allow-new-address accepts a new address, closing the container's TCP connections)", n.Name, subnet, n.Subnet, n.IPv4)
		}
		renumber()
		return info, nil
	}
	if err := in.checkAddressFree(info, n); err != nil {
		if !in.pre.AllowNewAddress {
			return info, err
		}
		in.log.Info("the container gets a new address", "network", n.Name, "why", err)
		renumber()
	}
	return info, nil
}

// checkInterfaces refuses networks whose interfaces Docker (API version
// api) would not name as the source had them, or whose MAC it cannot set.
// renumber lists the networks where the container gets a new address (and
// so a new MAC).
func checkInterfaces(api string, nets []protocol.NetworkSpec, infos []docker.NetworkInfo, renumber map[string]bool) error {
	var why []string
	if versions.LessThan(api, "1.44") {
		// Before 1.44 the MAC is the container's, set on the network it
		// is created with; Docker derives the others' from the address.
		for _, n := range nets[1:] {
			if derived := derivedMAC(n.IPv4); !renumber[n.Name] && !strings.EqualFold(derived, n.MAC) {
				why = append(why, fmt.Sprintf("network %q: Docker here (API %s) sets the MAC of the container's first network only, "+
					"and would give this one %s instead of %s (Docker 25 or later sets each)", n.Name, api, derived, n.MAC))
			}
		}
	}
	if !versions.LessThan(api, docker.InterfaceNames) || len(nets) < 2 {
		return joinReasons(why)
	}
	want := make([]string, len(nets))
	for i, n := range nets {
		want[i] = n.Interface
	}
	got := dockerInterfaceOrder(nets, infos)
	for i, n := range nets {
		if n.Interface != "" && got[i] != n.Interface {
			why = append(why, fmt.Sprintf("Docker here (API %s) names interfaces itself and would attach the container as %s, "+
				"not as on the source (%s); Docker 28 (API 1.48) keeps the names",
				api, describeInterfaces(nets, got), describeInterfaces(nets, want)))
			break
		}
	}
	return joinReasons(why)
}

func joinReasons(why []string) error {
	if len(why) == 0 {
		return nil
	}
	return errors.New(strings.Join(why, "; "))
}

// describeInterfaces says which network each interface is on:
// "eth0=front, eth1=back".
func describeInterfaces(nets []protocol.NetworkSpec, names []string) string {
	parts := make([]string, 0, len(nets))
	for i, n := range nets {
		name := names[i]
		if name == "" {
			name = "?"
		}
		parts = append(parts, name+"="+n.Name)
	}
	slices.SortFunc(parts, func(a, b string) int {
		return compareInterfaces(a[:strings.IndexByte(a, '=')], b[:strings.IndexByte(b, '=')])
	})
	return strings.Join(parts, ", ")
}

// dockerInterfaceOrder predicts the names Docker before 28 gives the
// container's interfaces on nets (infos: each network here): it wires the
// endpoints in libnetwork's order (networks with a way out before internal
// ones, a gateway for IPv6 and IPv4 before one family only, then by name)
// and numbers them eth0, eth1, ...
func dockerInterfaceOrder(nets []protocol.NetworkSpec, infos []docker.NetworkInfo) []string {
	idx := make([]int, len(nets))
	for i := range idx {
		idx[i] = i
	}
	rank := func(i int) int { // the endpoint's gateways, as libnetwork counts them
		if infos[i].Internal {
			return 0
		}
		if infos[i].IPv6 {
			return 3
		}
		return 1
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if ia, ib := infos[a].Internal, infos[b].Internal; ia != ib {
			if ia {
				return 1
			}
			return -1
		}
		if ra, rb := rank(a), rank(b); ra != rb {
			return rb - ra
		}
		return strings.Compare(nets[a].Name, nets[b].Name)
	})
	names := make([]string, len(nets))
	for pos, i := range idx {
		names[i] = fmt.Sprintf("eth%d", pos)
	}
	return names
}

// derivedMAC is the MAC Docker before 25 gives an endpoint it has no MAC
// for: 02:42 and the IPv4 address.
func derivedMAC(ipv4 string) string {
	ip := net.ParseIP(ipv4).To4()
	if ip == nil {
		return ""
	}
	return net.HardwareAddr{0x02, 0x42, ip[0], ip[1], ip[2], ip[3]}.String()
}

// verifyInterfaces checks, in the restored container (pid), that each
// network's interface has the name and, where the address was kept, the
// MAC it had on the source. addrs are the container's addresses here, by
// network.
func verifyInterfaces(pid int, nets []protocol.NetworkSpec, addrs map[string]string, renumber map[string]bool) error {
	if len(nets) == 0 {
		return nil
	}
	links, err := netrewire.Addresses(pid)
	if err != nil {
		return fmt.Errorf("reading the restored container's interfaces: %w", err)
	}
	return matchInterfaces(nets, addrs, renumber, links)
}

// matchInterfaces is verifyInterfaces on the interfaces found (links).
func matchInterfaces(nets []protocol.NetworkSpec, addrs map[string]string, renumber map[string]bool, links []netrewire.Announcement) error {
	var why []string
	for _, n := range nets {
		ip := addrs[n.Name]
		i := slices.IndexFunc(links, func(l netrewire.Announcement) bool { return l.IP.String() == ip })
		if i < 0 {
			why = append(why, fmt.Sprintf("network %q: no interface holds the container's address %q", n.Name, ip))
			continue
		}
		l := links[i]
		if n.Interface != "" && l.Interface != n.Interface {
			why = append(why, fmt.Sprintf("network %q came up as %s, not %s as on the source", n.Name, l.Interface, n.Interface))
		}
		if !renumber[n.Name] && !strings.EqualFold(l.MAC.String(), n.MAC) {
			why = append(why, fmt.Sprintf("network %q: interface %s has MAC %s, not %s as on the source", n.Name, l.Interface, l.MAC, n.MAC))
		}
	}
	if len(why) > 0 {
		return fmt.Errorf("the restored container's network differs from the source's: %s", strings.Join(why, "; "))
	}
	return nil
}

// addressProbeWait is how long the destination listens for an answer to
// its ARP probe of the container's address.
const addressProbeWait = 300 * time.Millisecond

// checkAddressFree refuses an address that another machine holds on the
// container's network: host2 would take it over and announce it. On a
// macvlan network the container keeps its MAC, so an answer from any other
// MAC than the container's (whose original still answers from the source)
// is someone else's. Other drivers are not probed: ipvlan answers with
// the host's MAC, and a bridge network is this host's own.
func (in *incoming) checkAddressFree(info docker.NetworkInfo, n *protocol.NetworkSpec) error {
	if info.Driver != "macvlan" || info.Parent == "" || n.IPv4 == "" || n.MAC == "" {
		return nil
	}
	ip, mac := net.ParseIP(n.IPv4), strings.ToLower(n.MAC)
	holders, err := netrewire.Holders(info.Parent, ip, addressProbeWait)
	if err != nil {
		in.log.Warn("could not check that the container's address is free on its network", "address", n.IPv4, "network", n.Name, "err", err)
		return nil
	}
	for _, h := range holders {
		if h.String() != mac {
			return fmt.Errorf("address %s on network %q already answers from MAC %s, not the container's %s: another machine holds it there; "+
				"free the address, or accept a new one (migrate-src --allow-new-address)", n.IPv4, n.Name, h, n.MAC)
		}
	}
	return nil
}
