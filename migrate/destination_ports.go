package migrate

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"

	"github.com/dockmove/dockmove/internal/docker"
)

// portRange is a closed range of host ports.
type portRange struct{ first, last int }

// parsePortRanges reads "80,443,8000-9000"; "" is every port.
func parsePortRanges(s string) ([]portRange, error) {
	if strings.TrimSpace(s) == "" {
		return []portRange{{1, 65535}}, nil
	}
	var out []portRange
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		first, err1 := strconv.Atoi(lo)
		last, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || first < 1 || last > 65535 || first > last {
			return nil, fmt.Errorf("migrate: invalid host port range %q (want PORT or FIRST-LAST, 1-65535)", part)
		}
		out = append(out, portRange{first, last})
	}
	return out, nil
}

func portAllowed(ranges []portRange, p int) bool {
	for _, r := range ranges {
		if p >= r.first && p <= r.last {
			return true
		}
	}
	return false
}

// checkPorts refuses, naming each port, host ports the container publishes
// that this destination's policy does not allow or that are taken here: by
// a running container, by a process, or on an address this host lacks.
// Ports Docker chooses (-p 7000, -P) are its business.
func (in *incoming) checkPorts(ctx context.Context) error {
	bindings, err := docker.PortBindings(in.pre.Container.DockerHostConfig)
	if err != nil || len(bindings) == 0 {
		return err
	}
	allowed, _ := parsePortRanges(in.srv.cfg.HostPorts) // checked by Validate
	held, err := in.srv.dk.PublishedPorts(ctx)
	if err != nil {
		return err
	}
	var why []string
	for _, b := range bindings {
		first, last, _ := b.HostPorts() // checked by PortBindings
		for p := first; p > 0 && p <= last; p++ {
			if err := hostPortFree(b, p, allowed, held); err != nil {
				why = append(why, err.Error())
			}
		}
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%s (migrate-src --remap-port PORT=OTHER publishes it elsewhere on this host)", strings.Join(why, "; "))
}

// hostPortFree checks host port p of binding b.
func hostPortFree(b docker.PortBinding, p int, allowed []portRange, held []docker.PublishedPort) error {
	proto := b.Proto()
	name := fmt.Sprintf("host port %d/%s", p, proto)
	if b.HostIP != "" {
		name = fmt.Sprintf("host port %s/%s", net.JoinHostPort(b.HostIP, strconv.Itoa(p)), proto)
	}
	if !portAllowed(allowed, p) {
		return fmt.Errorf("%s is outside the ports this destination lets containers publish (migrate-dst --host-ports)", name)
	}
	for _, h := range held {
		if h.Port == p && h.Proto == proto && sameOrAnyIP(h.IP, b.HostIP) {
			return fmt.Errorf("%s is published by container %s on the destination", name, h.Container)
		}
	}
	return bindFree(name, proto, b.HostIP, p)
}

// sameOrAnyIP reports whether two host addresses of a binding overlap.
func sameOrAnyIP(a, b string) bool {
	unspecified := func(s string) bool { ip := net.ParseIP(s); return s == "" || ip == nil || ip.IsUnspecified() }
	return unspecified(a) || unspecified(b) || net.ParseIP(a).Equal(net.ParseIP(b))
}

// bindFree binds the port for a moment, as Docker's proxy will: a process
// holding it, or an address this host does not have, fails the same way
// there (SCTP is left to Docker).
func bindFree(name, proto, ip string, port int) error {
	if ip == "" {
		ip = "0.0.0.0"
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	var err error
	switch proto {
	case "tcp":
		var l net.Listener
		if l, err = net.Listen("tcp", addr); err == nil {
			l.Close()
		}
	case "udp":
		var c net.PacketConn
		if c, err = net.ListenPacket("udp", addr); err == nil {
			c.Close()
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%s is in use by a process on the destination", name)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%s: %s is not an address of the destination", name, ip)
	}
	return fmt.Errorf("%s cannot be bound on the destination: %v", name, err)
}
