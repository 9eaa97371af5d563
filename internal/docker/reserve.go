package docker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/versions"

	"github.com/dockmove/dockmove/internal/reserve"
	"github.com/dockmove/dockmove/internal/restoreruntime"
	"github.com/dockmove/dockmove/protocol"
)

// Reservation is a container holding an address for a container that
// moved away (package reserve).
type Reservation struct {
	ID      string `json:"id"`
	Network string `json:"network"`
	IPv4    string `json:"ipv4"`
	IPv6    string `json:"ipv6,omitempty"` // held too, on a dual-stack network
	Image   string `json:"image"`
}

// Reserve starts a reservation of address ip (and ip6, if not "") on
// network, running holder (a static dockmove binary this dockerd can see)
// in image, which only serves as its root file system, under OCI runtime
// ("": Docker's default; else dockmove's restore runtime, which cuts a
// reservation's namespace off from local delivery before Docker wires it).
// A reservation that cannot hold an IPv6 address without taking packets
// for it (holdsIPv6) leaves ip6 out: the reservation's IPv6 is then "".
func (c *Client) Reserve(ctx context.Context, netName, ip, ip6, image, holder, runtime string) (Reservation, error) {
	api, err := c.APIVersion(ctx)
	if err != nil {
		return Reservation{}, err
	}
	if !holdsIPv6(api, runtime) {
		ip6 = ""
	}
	r := Reservation{Network: netName, IPv4: ip, IPv6: ip6, Image: image}
	img, err := c.api.ImageInspect(ctx, image)
	if err != nil {
		return r, wrap("image inspect "+image, err)
	}
	labels := map[string]string{reserve.Label: reserve.Value(netName, ip)}
	if ip6 != "" {
		labels[reserve.LabelIPv6] = ip6
	}
	cfg := &container.Config{
		Image: image, Entrypoint: []string{reserve.HolderPath}, Cmd: []string{reserve.HoldArg}, User: "0:0", WorkingDir: "/",
		Labels: labels,
		// The image is only a root: none of its healthcheck.
		Healthcheck: &container.HealthConfig{Test: []string{"NONE"}},
	}
	host := &container.HostConfig{
		NetworkMode:   container.NetworkMode(netName),
		Runtime:       runtime,
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		CapDrop:       []string{"ALL"}, CapAdd: []string{"NET_ADMIN"},
		Binds:          []string{holder + ":" + reserve.HolderPath + ":ro"},
		ReadonlyRootfs: true,
		// Answer no ARP for the address, even in the instant before the
		// holder puts the interface down.
		Sysctls: map[string]string{"net.ipv4.conf.all.arp_ignore": "8"},
		Tmpfs:   map[string]string{},
	}
	if ip6 == "" || versions.LessThan(api, WiresAfterCreate) {
		// No IPv6 in the kernel: an IPv6 address is held in Docker's
		// allocator only (holdsIPv6), and a reservation holding none
		// takes none (with IPv6 on, a later Docker would give it one of
		// its own choosing: maybe the one the moved container just left).
		host.Sysctls["net.ipv6.conf.all.disable_ipv6"] = "1"
	}
	if img.Config != nil {
		for path := range img.Config.Volumes {
			// Nor its volumes: a tmpfs there keeps Docker from making one.
			host.Tmpfs[path] = "size=64k"
		}
	}
	// A MAC of its own. Docker before 26 derives an endpoint's MAC from
	// its address: the reservation's would be the moved container's, and
	// its interface, coming up, speaks before the sysctls above apply (an
	// IPv6 multicast listener report; measured on 20.10): the switch then
	// learns the moved container's MAC on this host's port and sends its
	// clients' packets here, where the reservation, not yet cut off from
	// local delivery, resets their connections (TestSeveralNetworks, about
	// one run in twenty). With a MAC of its own the switch's table stays.
	mac, err := reservationMAC()
	if err != nil {
		return r, err
	}
	netcfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		netName: endpoint(protocol.NetworkSpec{Name: netName, IPv4: ip, IPv6: ip6, MAC: mac}, api, cfg),
	}}
	resp, err := c.api.ContainerCreate(ctx, cfg, host, netcfg, nil, reserve.Name(netName, ip))
	if err != nil {
		return r, wrap("create the reservation of "+ip, err)
	}
	r.ID = resp.ID
	if err := c.Start(ctx, r.ID); err != nil {
		return r, errors.Join(err, c.Remove(context.WithoutCancel(ctx), r.ID))
	}
	return r, nil
}

// holdsIPv6 reports whether a reservation under runtime, on a Docker of
// API version api, can hold an IPv6 address without taking its packets.
// Before API 1.45 (WiresAfterCreate) Docker wires the network in runc's
// prestart hook, before runc applies the reservation's disable_ipv6: the
// address is allocated and set, then taken off the interface before the
// holder runs. Later Dockers wire after runc's create: with IPv6 off they
// allocate no IPv6 address at all (measured on 28: another container got
// it), so IPv6 stays on and they advertise the address (unsolicited
// neighbour advertisements, Docker 27 and later), drawing the moved
// container's IPv6 clients to the home for a moment. Under Docker's own
// runtime their connections were reset there (measured: TestMixedFleet,
// 28 to 28, several networks); under dockmove's runtime the namespace has
// no local delivery before it is wired, so those packets are dropped, the
// holder puts the interface down (no answer to a neighbour solicitation
// from then on), and the moved container's host announces the address
// again over the seconds after the commit, which takes the clients back.
func holdsIPv6(api, runtime string) bool {
	return versions.LessThan(api, WiresAfterCreate) || runtime == restoreruntime.Name
}

// reservationMAC is a random locally administered unicast MAC address.
func reservationMAC() (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	b[0] = b[0]&^1 | 2
	return net.HardwareAddr(b).String(), nil
}

// FindReservation returns the reservation of address ip on network, if
// this host holds one.
func (c *Client) FindReservation(ctx context.Context, netName, ip string) (Reservation, bool, error) {
	list, err := c.reservations(ctx, reserve.Value(netName, ip))
	switch {
	case err != nil:
		return Reservation{}, false, err
	case len(list) > 1:
		return Reservation{}, false, fmt.Errorf("%d containers reserve %s on %s", len(list), ip, netName)
	case len(list) == 0:
		return Reservation{}, false, nil
	}
	return list[0], true, nil
}

// Reservations lists the reservations this host keeps.
func (c *Client) Reservations(ctx context.Context) ([]Reservation, error) {
	return c.reservations(ctx, "")
}

// reservations lists the reservations with label value ("": any).
func (c *Client) reservations(ctx context.Context, value string) ([]Reservation, error) {
	filter := reserve.Label
	if value != "" {
		filter += "=" + value
	}
	list, err := c.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", filter))})
	if err != nil {
		return nil, wrap("list reservations", err)
	}
	out := make([]Reservation, 0, len(list))
	for _, ct := range list {
		netName, ip, _ := strings.Cut(ct.Labels[reserve.Label], "/")
		out = append(out, Reservation{ID: ct.ID, Network: netName, IPv4: ip, IPv6: ct.Labels[reserve.LabelIPv6], Image: ct.ImageID})
	}
	return out, nil
}
