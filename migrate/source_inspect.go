//go:build linux

package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/internal/criu"
	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/internal/reserve"
	"github.com/dockmove/dockmove/netrewire"
	"github.com/dockmove/dockmove/protocol"
)

// ErrCannotMove reports a container that dockmove refuses to move, before
// anything is frozen. The message names every reason.
var ErrCannotMove = errors.New("container cannot be migrated")

// dockerMounts are the files Docker bind-mounts into every container with its
// own network stack; CRIU must treat them as external mounts.
var dockerMounts = []string{"/etc/resolv.conf", "/etc/hostname", "/etc/hosts"}

// specFromInspect turns a running container's description into the spec the
// destination recreates, refusing what cannot move yet.
func specFromInspect(ctx context.Context, dk *docker.Client, r container.InspectResponse, binds protocol.BindMode) (protocol.ContainerSpec, error) {
	if err := refusals(r, binds); err != nil {
		return protocol.ContainerSpec{}, err
	}
	cfg, host := r.Config, r.HostConfig
	spec := protocol.ContainerSpec{
		Name: strings.TrimPrefix(r.Name, "/"), Image: cfg.Image, ImageID: r.Image,
		Hostname: cfg.Hostname, Domainname: cfg.Domainname, User: cfg.User, WorkingDir: cfg.WorkingDir,
		Env: cfg.Env, Cmd: cfg.Cmd, Entrypoint: cfg.Entrypoint, Labels: withoutOwnLabels(cfg.Labels),
		TTY: cfg.Tty, OpenStdin: cfg.OpenStdin, StopSignal: cfg.StopSignal,
		RestartPolicy: string(host.RestartPolicy.Name), RestartMax: host.RestartPolicy.MaximumRetryCount,
		CapAdd: host.CapAdd, CapDrop: host.CapDrop,
	}
	var err error
	if spec.DockerConfig, err = json.Marshal(cfg); err != nil {
		return spec, err
	}
	if spec.DockerHostConfig, err = json.Marshal(host); err != nil {
		return spec, err
	}
	for p := range cfg.ExposedPorts {
		spec.ExposedPorts = append(spec.ExposedPorts, string(p))
	}
	sort.Strings(spec.ExposedPorts)
	for _, m := range r.Mounts {
		if m.Type == mount.TypeBind {
			b := protocol.BindSpec{Source: m.Source, Destination: m.Destination, ReadOnly: !m.RW, Mode: binds}
			if binds == protocol.BindShared {
				// Written there for the preflight (writeMarkers).
				b.Marker = ".dockmove-shared-" + randomHex(16)
			}
			spec.Binds = append(spec.Binds, b)
			continue
		}
		spec.Volumes = append(spec.Volumes, protocol.VolumeSpec{Name: m.Name, Destination: m.Destination, ReadOnly: !m.RW,
			Anonymous: dk.AnonymousVolume(ctx, m.Name, m.Destination, cfg.Volumes)})
	}
	if spec.Networks, err = networksOf(ctx, dk, r); err != nil {
		return spec, err
	}
	if host.Init != nil && *host.Init {
		if spec.InitBinary, err = initDigest(r.State.Pid); err != nil {
			return spec, fmt.Errorf("%w: %v", ErrCannotMove, err)
		}
	}
	if err := spec.Validate(); err != nil {
		return spec, fmt.Errorf("%w: %v", ErrCannotMove, err)
	}
	return spec, nil
}

// networksOf lists the container's networks in the order of its
// interfaces, each named as the container's processes see it.
func networksOf(ctx context.Context, dk *docker.Client, r container.InspectResponse) ([]protocol.NetworkSpec, error) {
	var out []protocol.NetworkSpec
	for name, ep := range r.NetworkSettings.Networks {
		if name == "none" || ep == nil {
			continue // no network: host2 uses "none" too
		}
		def, err := dk.NetworkDefinition(ctx, name)
		if err != nil {
			return nil, err
		}
		if why := driverRefusal(name, def.Driver); why != "" {
			return nil, fmt.Errorf("%w: %s", ErrCannotMove, why)
		}
		out = append(out, protocol.NetworkSpec{Name: name, Subnet: def.Subnet, IPv4: ep.IPAddress, IPv6: ep.GlobalIPv6Address, MAC: ep.MacAddress,
			Aliases: userAliases(ep.Aliases, r.ID), GwPriority: ep.GwPriority, Definition: def})
	}
	if len(out) == 0 {
		return nil, nil
	}
	links, err := netrewire.Addresses(r.State.Pid)
	if err != nil && len(out) > 1 {
		// Without the names, host2 could swap eth0 and eth1 under the
		// processes.
		return nil, fmt.Errorf("reading the container's interfaces, to keep their names on the destination: %w", err)
	}
	nameInterfaces(out, links)
	return out, nil
}

// nameInterfaces names each network's interface from the container's own
// (found by its address, else its MAC: ipvlan interfaces share one) and
// puts the networks in the order of their interfaces, eth0's first.
func nameInterfaces(nets []protocol.NetworkSpec, links []netrewire.Announcement) {
	for i := range nets {
		n := &nets[i]
		for _, l := range links {
			if l.IP.String() == n.IPv4 {
				n.Interface = l.Interface
				break
			}
			if strings.EqualFold(l.MAC.String(), n.MAC) && n.Interface == "" {
				n.Interface = l.Interface
			}
		}
	}
	slices.SortFunc(nets, func(a, b protocol.NetworkSpec) int {
		if c := compareInterfaces(a.Interface, b.Interface); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
}

// compareInterfaces orders interface names as Docker numbers them (eth2
// before eth10), unknown ("") last.
func compareInterfaces(a, b string) int {
	if (a == "") != (b == "") {
		if a == "" {
			return 1
		}
		return -1
	}
	pa, na := splitIndex(a)
	pb, nb := splitIndex(b)
	if c := strings.Compare(pa, pb); c != 0 {
		return c
	}
	if na != nb {
		return na - nb
	}
	return strings.Compare(a, b)
}

// splitIndex splits "eth12" into "eth" and 12 (-1 without digits).
func splitIndex(name string) (string, int) {
	i := len(name)
	for i > 0 && name[i-1] >= '0' && name[i-1] <= '9' {
		i--
	}
	n, err := strconv.Atoi(name[i:])
	if err != nil {
		return name, -1
	}
	return name[:i], n
}

// userAliases drops the alias Docker adds itself (the short container ID).
func userAliases(aliases []string, id string) []string {
	var out []string
	for _, a := range aliases {
		if len(id) >= 12 && a == id[:12] {
			continue
		}
		out = append(out, a)
	}
	return out
}

// refusals lists every reason the container cannot move, its bind mounts
// moving as binds says ("": they do not).
func refusals(r container.InspectResponse, binds protocol.BindMode) error {
	var why []string
	add := func(cond bool, reason string) {
		if cond {
			why = append(why, reason)
		}
	}
	host := r.HostConfig
	add(r.State == nil || !r.State.Running, "it is not running")
	add(r.State != nil && r.State.Paused, "it is paused")
	add(host.NetworkMode.IsHost(), "it uses the host's network namespace")
	add(host.NetworkMode.IsContainer(), "it shares another container's network namespace")
	add(host.PidMode.IsHost() || host.PidMode.IsContainer(), "it shares a PID namespace ("+string(host.PidMode)+")")
	add(host.IpcMode.IsHost() || host.IpcMode.IsContainer() || host.IpcMode.IsShareable(), "its IPC namespace is shared ("+string(host.IpcMode)+")")
	add(host.UsernsMode.IsHost(), "it uses the host's user namespace")
	add(host.Privileged, "it is privileged")
	if r.Config != nil && r.Config.Labels[reserve.Label] != "" {
		v := r.Config.Labels[reserve.Label]
		why = append(why, "it is dockmove's reservation of address "+v+" (it holds the address here while that container lives on another host)")
	}
	add(len(host.Devices) > 0, "it has devices mapped from the host")
	add(r.GraphDriver.Name != driverOverlay2 && r.GraphDriver.Name != driverSnapshotter,
		"its storage driver is "+r.GraphDriver.Name+", not overlay2 or the containerd image store's overlayfs")
	for _, m := range r.Mounts {
		switch m.Type {
		case mount.TypeVolume:
			add(m.Driver != "local", fmt.Sprintf("volume %s uses driver %s", m.Name, m.Driver))
		case mount.TypeBind:
			add(binds == "", fmt.Sprintf("%s is a bind mount of a host path (%s): --bind-mounts copy ships its contents to the same path "+
				"on the destination, --bind-mounts shared declares that the destination sees that path on shared storage", m.Destination, m.Source))
			if binds == protocol.BindCopy {
				fi, err := os.Stat(m.Source)
				add(err != nil, fmt.Sprintf("bind mount %s: %v", m.Destination, err))
				add(err == nil && !fi.IsDir(), fmt.Sprintf("bind mount %s is of a file (%s): --bind-mounts copy ships directories; use --bind-mounts shared", m.Destination, m.Source))
			}
		default:
			add(true, fmt.Sprintf("%s is a %s mount (%s)", m.Destination, m.Type, m.Source))
		}
	}
	why = append(why, mountOptions(host.Mounts)...)
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrCannotMove, strings.Join(why, "; "))
}

// mountOptions names the options of --mount mounts that the destination
// would not apply (it mounts a volume whole, a bind as a plain bind): a
// volume's subdirectory (volume-subpath) would show the whole volume on
// host2, bind propagation and recursion settings would change what the
// processes see.
func mountOptions(mounts []mount.Mount) []string {
	var why []string
	for _, m := range mounts {
		if o := m.VolumeOptions; o != nil && o.Subpath != "" {
			why = append(why, fmt.Sprintf("%s mounts the subdirectory %s of volume %s (volume-subpath), which is not carried yet", m.Target, o.Subpath, m.Source))
		}
		if o := m.BindOptions; o != nil && (o.Propagation != "" && o.Propagation != mount.PropagationRPrivate || o.NonRecursive || o.ReadOnlyNonRecursive || o.ReadOnlyForceRecursive) {
			why = append(why, fmt.Sprintf("%s is a bind mount with propagation or recursion options (bind-propagation, bind-recursive), which are not carried yet", m.Target))
		}
	}
	return why
}

// dumpSpec describes the running container for CRIU.
func dumpSpec(r container.InspectResponse) (criu.DumpSpec, error) {
	pid := r.State.Pid
	if pid <= 0 {
		return criu.DumpSpec{}, fmt.Errorf("%w: no init PID (%s)", ErrCannotMove, docker.ExitInfo(r))
	}
	_, merged, err := writableLayer(r)
	if err != nil {
		return criu.DumpSpec{}, err
	}
	if merged == "" {
		// CRIU's dump does not use it for overlay roots; name it anyway.
		merged = fmt.Sprintf("/proc/%d/root", pid)
	}
	cgroups, err := criu.CgroupMounts(pid)
	if err != nil {
		return criu.DumpSpec{}, err
	}
	ext := append(append([]string(nil), dockerMounts...), cgroups...)
	for _, m := range r.Mounts {
		ext = append(ext, m.Destination)
	}
	if r.HostConfig.Init != nil && *r.HostConfig.Init {
		ext = append(ext, initMount)
	}
	var ns unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &ns); err != nil {
		return criu.DumpSpec{}, fmt.Errorf("network namespace of %d: %w", pid, err)
	}
	return criu.DumpSpec{Pid: pid, Root: merged, ExternalMounts: ext, FreezeCgroup: criu.FreezerCgroup(pid), TTY: r.Config.Tty, Netns: ns.Ino}, nil
}
