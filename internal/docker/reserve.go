package docker

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/dockmove/dockmove/internal/reserve"
)

// Reservation is a container holding an address for a container that
// moved away (package reserve).
type Reservation struct {
	ID      string `json:"id"`
	Network string `json:"network"`
	IPv4    string `json:"ipv4"`
	Image   string `json:"image"`
}

// Reserve starts a reservation of address ip on network, running holder
// (a static dockmove binary this dockerd can see) in image, which only
// serves as its root file system, under OCI runtime ("": Docker's
// default).
func (c *Client) Reserve(ctx context.Context, netName, ip, image, holder, runtime string) (Reservation, error) {
	r := Reservation{Network: netName, IPv4: ip, Image: image}
	img, err := c.api.ImageInspect(ctx, image)
	if err != nil {
		return r, wrap("image inspect "+image, err)
	}
	cfg := &container.Config{
		Image: image, Entrypoint: []string{reserve.HolderPath}, Cmd: []string{reserve.HoldArg}, User: "0:0", WorkingDir: "/",
		Labels: map[string]string{reserve.Label: reserve.Value(netName, ip)},
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
		// No IPv6 at all: Docker 27 and later would advertise an IPv6
		// address of the reservation's, which may be the moved
		// container's (IPv6 addresses are not reserved yet).
		Sysctls: map[string]string{"net.ipv4.conf.all.arp_ignore": "8", "net.ipv6.conf.all.disable_ipv6": "1"},
		Tmpfs:   map[string]string{},
	}
	if img.Config != nil {
		for path := range img.Config.Volumes {
			// Nor its volumes: a tmpfs there keeps Docker from making one.
			host.Tmpfs[path] = "size=64k"
		}
	}
	netcfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		netName: {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: ip}},
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
		out = append(out, Reservation{ID: ct.ID, Network: netName, IPv4: ip, Image: ct.ImageID})
	}
	return out, nil
}
