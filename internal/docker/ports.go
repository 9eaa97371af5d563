package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
)

// PortBinding is one host port (or range) a container publishes (-p).
type PortBinding struct {
	ContainerPort string // "7000/tcp"
	HostIP        string // "" or "0.0.0.0": every address of the host
	HostPort      string // "18080", "8000-8010", or "": Docker chooses
}

// Proto is the binding's protocol: tcp, udp or sctp.
func (b PortBinding) Proto() string { return nat.Port(b.ContainerPort).Proto() }

// HostPorts are the host ports b names, first and last; 0, 0 when Docker
// chooses.
func (b PortBinding) HostPorts() (first, last int, err error) {
	if b.HostPort == "" {
		return 0, 0, nil
	}
	s, e, err := nat.ParsePortRangeToInt(b.HostPort)
	if err != nil || s < 1 || e > 65535 || s > e {
		return 0, 0, fmt.Errorf("invalid host port %q of %s", b.HostPort, b.ContainerPort)
	}
	return s, e, nil
}

func (b PortBinding) String() string {
	host := b.HostPort
	if host == "" {
		host = "(any)"
	}
	if b.HostIP != "" {
		host = net.JoinHostPort(b.HostIP, host)
	}
	return host + "->" + b.ContainerPort
}

// validate checks a binding from a peer: a container port Docker accepts,
// a host address that is an IP, a host port or range.
func (b PortBinding) validate() error {
	p := nat.Port(b.ContainerPort)
	if n := p.Int(); n < 1 || n > 65535 || !portProtos[p.Proto()] || string(p) != strconv.Itoa(n)+"/"+p.Proto() {
		return fmt.Errorf("invalid published port %q", b.ContainerPort)
	}
	if b.HostIP != "" && net.ParseIP(b.HostIP) == nil {
		return fmt.Errorf("invalid host address %q for port %s", b.HostIP, b.ContainerPort)
	}
	_, _, err := b.HostPorts()
	return err
}

var portProtos = map[string]bool{"tcp": true, "udp": true, "sctp": true}

// PortBindings lists the ports the HostConfig raw (Docker's JSON) publishes,
// sorted; an invalid one is an error.
func PortBindings(raw json.RawMessage) ([]PortBinding, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var h struct{ PortBindings nat.PortMap }
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, fmt.Errorf("docker host config: %w", err)
	}
	var out []PortBinding
	for port, bs := range h.PortBindings {
		if len(bs) == 0 {
			bs = []nat.PortBinding{{}} // "-p 7000": Docker chooses
		}
		for _, b := range bs {
			pb := PortBinding{ContainerPort: string(port), HostIP: b.HostIP, HostPort: b.HostPort}
			if err := pb.validate(); err != nil {
				return nil, err
			}
			out = append(out, pb)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// RemapPorts rewrites the host side of the ports the HostConfig raw
// publishes: each key of remap, "[IP:]PORT", names a published host port
// (on any address unless IP is given) and its value, "[IP:]PORT", where it
// is published instead. A key that matches nothing is an error, so a typo
// does not go unnoticed.
func RemapPorts(raw json.RawMessage, remap map[string]string) (json.RawMessage, error) {
	if len(remap) == 0 {
		return raw, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("docker host config: %w", err)
	}
	var pm nat.PortMap
	if v, ok := fields["PortBindings"]; ok {
		if err := json.Unmarshal(v, &pm); err != nil {
			return nil, fmt.Errorf("docker host config: %w", err)
		}
	}
	used := map[string]bool{}
	for port, bs := range pm {
		for i, b := range bs {
			for from, to := range remap {
				fromIP, fromPort, err := splitHostPort(from)
				if err != nil {
					return nil, err
				}
				if b.HostPort != fromPort || (fromIP != "" && b.HostIP != fromIP) {
					continue
				}
				toIP, toPort, err := splitHostPort(to)
				if err != nil {
					return nil, err
				}
				bs[i].HostPort = toPort
				if toIP != "" {
					bs[i].HostIP = toIP
				}
				used[from] = true
			}
		}
		pm[port] = bs
	}
	var missing []string
	for from := range remap {
		if !used[from] {
			missing = append(missing, from)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("the container publishes no host port %s", strings.Join(missing, ", "))
	}
	b, err := json.Marshal(pm)
	if err != nil {
		return nil, err
	}
	fields["PortBindings"] = b
	return json.Marshal(fields)
}

// splitHostPort parses "[IP:]PORT" (an IPv6 address in brackets).
func splitHostPort(s string) (ip, port string, err error) {
	ip, port = "", s
	if strings.Contains(s, ":") {
		if ip, port, err = net.SplitHostPort(s); err != nil {
			return "", "", fmt.Errorf("invalid port %q: want [IP:]PORT", s)
		}
		if net.ParseIP(ip) == nil {
			return "", "", fmt.Errorf("invalid address in %q", s)
		}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf("invalid port %q: want [IP:]PORT", s)
	}
	return ip, port, nil
}

// PublishedPort is a host port a running container holds.
type PublishedPort struct {
	Container string
	IP        string
	Port      int
	Proto     string
}

// PublishedPorts lists the host ports held by this host's running
// containers.
func (c *Client) PublishedPorts(ctx context.Context) ([]PublishedPort, error) {
	list, err := c.api.ContainerList(ctx, container.ListOptions{})
	if err != nil {
		return nil, wrap("ps", err)
	}
	var out []PublishedPort
	for _, s := range list {
		name := s.ID
		if len(s.Names) > 0 {
			name = strings.TrimPrefix(s.Names[0], "/")
		}
		for _, p := range s.Ports {
			if p.PublicPort != 0 {
				out = append(out, PublishedPort{Container: name, IP: p.IP, Port: int(p.PublicPort), Proto: p.Type})
			}
		}
	}
	return out, nil
}
