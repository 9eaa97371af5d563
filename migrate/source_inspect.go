//go:build linux

package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/internal/criu"
	"github.com/dockmove/dockmove/internal/docker"
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
		Env: cfg.Env, Cmd: cfg.Cmd, Entrypoint: cfg.Entrypoint, Labels: cfg.Labels,
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
	for name, ep := range r.NetworkSettings.Networks {
		if name == "none" {
			continue // no network: spec.Network stays nil, host2 uses "none" too
		}
		subnet, err := dk.NetworkSubnet(ctx, name)
		if err != nil {
			return spec, err
		}
		spec.Network = &protocol.NetworkSpec{Name: name, Subnet: subnet, IPv4: ep.IPAddress, MAC: ep.MacAddress, Aliases: userAliases(ep.Aliases, r.ID)}
	}
	if err := spec.Validate(); err != nil {
		return spec, fmt.Errorf("%w: %v", ErrCannotMove, err)
	}
	return spec, nil
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
	add(len(host.Devices) > 0, "it has devices mapped from the host")
	add(host.Init != nil && *host.Init, "it runs docker-init (--init)")
	add(len(r.NetworkSettings.Networks) > 1, "it is attached to more than one network")
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
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrCannotMove, strings.Join(why, "; "))
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
	var ns unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &ns); err != nil {
		return criu.DumpSpec{}, fmt.Errorf("network namespace of %d: %w", pid, err)
	}
	return criu.DumpSpec{Pid: pid, Root: merged, ExternalMounts: ext, FreezeCgroup: criu.FreezerCgroup(pid), TTY: r.Config.Tty, Netns: ns.Ino}, nil
}
