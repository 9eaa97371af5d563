package docker

import (
	"context"
	"maps"
	"strings"

	"github.com/docker/docker/api/types/network"

	"github.com/dockmove/dockmove/protocol"
)

// NetworkDefinition reads how this host's Docker defines network name:
// its driver, first IPv4 pool, options and labels.
func (c *Client) NetworkDefinition(ctx context.Context, name string) (*protocol.NetworkDefinition, error) {
	n, err := c.api.NetworkInspect(ctx, name, network.InspectOptions{})
	if err != nil {
		return nil, wrap("network inspect "+name, err)
	}
	d := &protocol.NetworkDefinition{Driver: n.Driver, Options: n.Options, Labels: n.Labels, Internal: n.Internal}
	for _, cfg := range n.IPAM.Config {
		switch {
		case !strings.Contains(cfg.Subnet, ":") && d.Subnet == "":
			d.Subnet, d.Gateway, d.IPRange = cfg.Subnet, cfg.Gateway, cfg.IPRange
		case strings.Contains(cfg.Subnet, ":") && d.Subnet6 == "" && n.EnableIPv6:
			d.Subnet6, d.Gateway6, d.IPRange6 = cfg.Subnet, cfg.Gateway, cfg.IPRange
		}
	}
	return d, nil
}

// CreateNetwork creates network name as d defines it, with extra labels.
func (c *Client) CreateNetwork(ctx context.Context, name string, d protocol.NetworkDefinition, labels map[string]string) error {
	all := maps.Clone(d.Labels)
	if all == nil {
		all = map[string]string{}
	}
	maps.Copy(all, labels)
	pools := []network.IPAMConfig{{Subnet: d.Subnet, Gateway: d.Gateway, IPRange: d.IPRange}}
	ipv6 := d.Subnet6 != ""
	if ipv6 {
		pools = append(pools, network.IPAMConfig{Subnet: d.Subnet6, Gateway: d.Gateway6, IPRange: d.IPRange6})
	}
	_, err := c.api.NetworkCreate(ctx, name, network.CreateOptions{
		Driver: d.Driver, Options: d.Options, Labels: all, Internal: d.Internal, EnableIPv6: &ipv6,
		IPAM: &network.IPAM{Config: pools},
	})
	return wrap("network create "+name, err)
}

// RemoveNetwork removes network name.
func (c *Client) RemoveNetwork(ctx context.Context, name string) error {
	return wrap("network rm "+name, c.api.NetworkRemove(ctx, name))
}

// Endpoint is a container's attachment to a network on this host.
type Endpoint struct {
	Container string   // its name, without the slash
	IPv4      string   // without the prefix length
	MAC       string   //
	Aliases   []string // its aliases on the network
	Labels    map[string]string
}

// NetworkEndpoints lists the containers attached to network name here.
func (c *Client) NetworkEndpoints(ctx context.Context, name string) ([]Endpoint, error) {
	n, err := c.api.NetworkInspect(ctx, name, network.InspectOptions{})
	if err != nil {
		return nil, wrap("network inspect "+name, err)
	}
	var out []Endpoint
	for id, ep := range n.Containers {
		e := Endpoint{Container: ep.Name, MAC: ep.MacAddress}
		e.IPv4, _, _ = strings.Cut(ep.IPv4Address, "/")
		if r, err := c.Inspect(ctx, id); err == nil {
			e.Labels = r.Config.Labels
			if s := r.NetworkSettings; s != nil && s.Networks[name] != nil {
				e.Aliases = s.Networks[name].Aliases
			}
		}
		out = append(out, e)
	}
	return out, nil
}
