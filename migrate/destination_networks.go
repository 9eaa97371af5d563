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
	"github.com/dockmove/dockmove/internal/reserve"
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
//
// A network this host lacks is refused, unless the source asks for it and
// this host allows it: then it is made in prepare from the source's
// definition under this host's policy (planNetwork), and removed again if
// the migration fails.

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

// checkNetwork checks that network n is one a container may join here,
// that it exists here (or is to be made), that the container can keep its
// address on it or, if the source allows, gets a new one, and that nothing
// here already has its identity there.
func (in *incoming) checkNetwork(ctx context.Context, n *protocol.NetworkSpec) (docker.NetworkInfo, error) {
	if allowed := in.srv.cfg.Networks; len(allowed) > 0 && !slices.Contains(allowed, n.Name) {
		return docker.NetworkInfo{}, fmt.Errorf("network %q is not one a migration may attach a container to here (migrate-dst --networks %s)",
			n.Name, strings.Join(allowed, ","))
	}
	info, err := in.srv.dk.Network(ctx, n.Name)
	exists := err == nil
	if info.Scope == "swarm" {
		// Whatever the source says of it, and before its definition
		// here is judged: one made --config-from shows no subnet.
		err = errors.New(swarmRefusal(n.Name))
	} else if errors.Is(err, docker.ErrNotFound) {
		info, err = in.networkToCreate(n)
	} else if err != nil {
		err = fmt.Errorf("the destination cannot read its network %q for the container: %v", n.Name, err)
	} else if why := driverRefusal(n.Name, info.Driver); why != "" {
		err = errors.New(why)
	}
	if err == nil {
		err = in.placeAddress(info, n)
	}
	if err == nil && exists {
		var eps []docker.Endpoint
		if eps, err = in.srv.dk.NetworkEndpoints(ctx, n.Name); err == nil {
			err = checkNeighbours(*n, in.pre.Container.Name, in.renumber[n.Name], eps)
		}
	}
	return info, err
}

// placeAddress decides whether the container keeps its address on network
// n (info: the network here) or, if the source allows, gets a new one.
func (in *incoming) placeAddress(info docker.NetworkInfo, n *protocol.NetworkSpec) error {
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
			return fmt.Errorf("network %q is a bridge, private to each host: the container's address %s cannot follow it here "+
				"(migrate-src --allow-new-address accepts a new one: its listening sockets and published ports carry on, its TCP connections are closed)", n.Name, n.IPv4)
		}
		renumber()
		return nil
	}
	if subnet := info.Subnet; subnet != n.Subnet {
		if !in.pre.AllowNewAddress {
			return fmt.Errorf("network %q has subnet %s on the destination, %s on the source: the address %s cannot be kept "+
				"(migrate-src --allow-new-address accepts a new address, closing the container's TCP connections)", n.Name, subnet, n.Subnet, n.IPv4)
		}
		renumber()
		return nil
	}
	err := in.checkAddressFree(info, n)
	if err == nil && n.IPv6 != "" && !holdsIPv6(info, n.IPv6) {
		err = fmt.Errorf("network %q has no IPv6 subnet holding the container's address %s on the destination (its IPv6 subnet: %q)", n.Name, n.IPv6, info.Subnet6)
	}
	if err != nil {
		if !in.pre.AllowNewAddress {
			return err
		}
		in.log.Info("the container gets a new address", "network", n.Name, "why", err)
		renumber()
	}
	return nil
}

// holdsIPv6 reports whether the network (info) gives its containers IPv6
// addresses in a subnet that holds ip.
func holdsIPv6(info docker.NetworkInfo, ip string) bool {
	_, sub, err := net.ParseCIDR(info.Subnet6)
	return info.IPv6 && err == nil && sub.Contains(net.ParseIP(ip))
}

// checkNeighbours refuses an identity on network n that a container here
// (eps) already has there: its address or MAC, unless the container gets
// new ones (renumbered), since Docker would refuse the start or two
// interfaces would answer; or a name the others reach it by, since an
// alias the source claims would draw their traffic to the moved container.
// This host's own reservation of the address is no clash: the container
// is coming home.
func checkNeighbours(n protocol.NetworkSpec, name string, renumbered bool, eps []docker.Endpoint) error {
	var why []string
	for _, ep := range eps {
		if ep.Labels[reserve.Label] == reserve.Value(n.Name, n.IPv4) {
			continue
		}
		if !renumbered && n.IPv4 != "" && ep.IPv4 == n.IPv4 {
			why = append(why, fmt.Sprintf("address %s on network %q is container %s's here", n.IPv4, n.Name, ep.Container))
		}
		if !renumbered && n.MAC != "" && strings.EqualFold(ep.MAC, n.MAC) {
			why = append(why, fmt.Sprintf("MAC %s on network %q is container %s's here", n.MAC, n.Name, ep.Container))
		}
		names := append([]string{ep.Container}, ep.Aliases...)
		for _, a := range n.Aliases {
			if slices.Contains(names, a) {
				why = append(why, fmt.Sprintf("alias %q on network %q is a name of container %s here: the moved container would take its traffic", a, n.Name, ep.Container))
			}
		}
		if slices.Contains(ep.Aliases, name) {
			why = append(why, fmt.Sprintf("the container's name %q is an alias of container %s on network %q here", name, ep.Container, n.Name))
		}
	}
	return joinReasons(why)
}

// networkToCreate plans, for a network this host lacks, the network it
// would create (made in prepare), and describes it as Docker would.
func (in *incoming) networkToCreate(n *protocol.NetworkSpec) (docker.NetworkInfo, error) {
	switch {
	case !in.pre.CreateNetworks || n.Definition == nil:
		return docker.NetworkInfo{}, fmt.Errorf("the destination has no network %q for the container "+
			"(migrate-src --create-networks creates it from the source's definition, where the destination allows it)", n.Name)
	case !in.srv.cfg.CreateNetworks:
		return docker.NetworkInfo{}, fmt.Errorf("the destination has no network %q, and does not create networks for migrations "+
			"(migrate-dst --allow-create-networks)", n.Name)
	}
	d, err := planNetwork(n.Name, *n.Definition, in.srv.cfg.NetworkRanges, haveInterface)
	if err != nil {
		return docker.NetworkInfo{}, err
	}
	in.createNets = append(in.createNets, namedNetwork{n.Name, d})
	r := d.IPRange
	if r == "" {
		r = d.Subnet
	}
	return docker.NetworkInfo{Subnet: d.Subnet, Driver: d.Driver, Parent: d.Options["parent"], Internal: d.Internal, Ranges: []string{r},
		IPv6: d.Subnet6 != "", Subnet6: d.Subnet6}, nil
}

// namedNetwork is a network to create here.
type namedNetwork struct {
	name string
	def  protocol.NetworkDefinition
}

// createOptions are the drivers this host creates networks of for a
// migration, with the driver options it takes from the source's
// definition for each.
var createOptions = map[string][]string{
	"bridge":  {"com.docker.network.bridge.enable_icc", "com.docker.network.bridge.enable_ip_masquerade", "com.docker.network.driver.mtu"},
	"macvlan": {"parent", "macvlan_mode"},
}

// planNetwork decides how this host creates network name, which the source
// defines as def: under this host's policy, never only as the source says.
// A network shared with other hosts (macvlan) must sit on an
// interface this host has (haveIface) and gets this host's own allocation
// range from ranges, never the source's (the hosts would hand out each
// other's addresses); a bridge, each host's own, keeps the source's.
func planNetwork(name string, def protocol.NetworkDefinition, ranges map[string][]string, haveIface func(string) bool) (protocol.NetworkDefinition, error) {
	if why := driverRefusal(name, def.Driver); why != "" {
		return def, errors.New(why)
	}
	allowed, ok := createOptions[def.Driver]
	if !ok {
		return def, fmt.Errorf("network %q uses driver %s: the destination creates only bridge and macvlan networks", name, def.Driver)
	}
	var unknown []string
	for k := range def.Options {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return def, fmt.Errorf("network %q has options the destination does not create networks with: %s", name, strings.Join(unknown, ", "))
	}
	out := def
	if !sharedLink(def.Driver) {
		return out, nil
	}
	parent := def.Options["parent"]
	if parent == "" || !haveIface(parent) {
		return def, fmt.Errorf("network %q is a %s network on interface %q, which the destination does not have", name, def.Driver, parent)
	}
	var err error
	if out.IPRange, err = ownRange(name, def.Subnet, ranges[name]); err != nil {
		return def, err
	}
	if def.Subnet6 != "" {
		if out.IPRange6, err = ownRange(name, def.Subnet6, ranges[name]); err != nil {
			return def, err
		}
	}
	return out, nil
}

// ownRange finds among this host's ranges for network name the one in
// subnet.
func ownRange(name, subnet string, ranges []string) (string, error) {
	for _, r := range ranges {
		if protocol.Within(r, subnet) {
			return r, nil
		}
	}
	return "", fmt.Errorf("network %q is shared with other hosts: creating it here needs this host's own allocation range in its subnet %s "+
		"(migrate-dst --network-range %s=CIDR; this host has %q), so that its Docker does not hand out addresses the others do", name, subnet, name, ranges)
}

// haveInterface reports whether this host has a network interface name.
func haveInterface(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// checkInterfaces refuses networks whose interfaces Docker (API version
// api) would not name as the source had them, or whose MAC it cannot set.
// renumber lists the networks where the container gets a new address (and
// so a new MAC).
func checkInterfaces(api string, nets []protocol.NetworkSpec, infos []docker.NetworkInfo, renumber map[string]bool) error {
	var why []string
	if versions.LessThan(api, docker.PerEndpointMAC) {
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

// checkAddressFree refuses an address (IPv4 or IPv6) that another machine
// holds on the container's network: host2 would take it over and announce
// it. On a
// macvlan network the container keeps its MAC, so an answer from any other
// MAC than the container's (whose original still answers from the source)
// is someone else's. Other drivers are not probed: ipvlan answers with
// the host's MAC, and a bridge network is this host's own.
func (in *incoming) checkAddressFree(info docker.NetworkInfo, n *protocol.NetworkSpec) error {
	if info.Driver != "macvlan" || info.Parent == "" || n.MAC == "" {
		return nil
	}
	mac := strings.ToLower(n.MAC)
	for _, a := range []string{n.IPv4, n.IPv6} {
		if a == "" {
			continue
		}
		holders, err := netrewire.Holders(info.Parent, net.ParseIP(a), addressProbeWait)
		if err != nil {
			in.log.Warn("could not check that the container's address is free on its network", "address", a, "network", n.Name, "err", err)
			continue
		}
		for _, h := range holders {
			if h.String() != mac {
				return fmt.Errorf("address %s on network %q already answers from MAC %s, not the container's %s: another machine holds it there; "+
					"free the address, or accept a new one (migrate-src --allow-new-address)", a, n.Name, h, n.MAC)
			}
		}
	}
	return nil
}
