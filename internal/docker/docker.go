// Package docker holds the Docker API calls dockmove makes, on a client that
// negotiates the API version (the lab's dockerd speaks 1.41).
package docker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

// ErrNotFound reports a missing container, image, network or volume.
var ErrNotFound = errors.New("docker: not found")

// Client talks to one dockerd.
type Client struct {
	api  *client.Client
	host string
}

// New connects to the dockerd at host (e.g. unix:///run/docker.sock); ""
// uses DOCKER_HOST or the default socket.
func New(host string) (*Client, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	api, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	return &Client{api: api, host: api.DaemonHost()}, nil
}

// Close releases the client's connections.
func (c *Client) Close() error { return c.api.Close() }

// Host is the daemon address.
func (c *Client) Host() string { return c.host }

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker %s: %w: %v", op, ErrNotFound, err)
	}
	return fmt.Errorf("docker %s: %w", op, err)
}

// Unreachable reports whether err says that dockerd did not answer (not
// running, restarting, or gone in the middle of the request), as opposed
// to refusing the request: worth trying again once it is back.
func Unreachable(err error) bool { return client.IsErrConnectionFailed(err) }

// APIVersion returns the negotiated API version. A ping alone does not
// negotiate (the client does that lazily, on its first other request): the
// version is settled from the ping's answer, or the client's default would
// be reported to a caller that asks first.
func (c *Client) APIVersion(ctx context.Context) (string, error) {
	p, err := c.api.Ping(ctx)
	if err != nil {
		return "", wrap("ping", err)
	}
	c.api.NegotiateAPIVersionPing(p)
	return c.api.ClientVersion(), nil
}

// HasRuntime reports whether dockerd knows the OCI runtime name.
func (c *Client) HasRuntime(ctx context.Context, name string) (bool, error) {
	info, err := c.api.Info(ctx)
	if err != nil {
		return false, wrap("info", err)
	}
	_, ok := info.Runtimes[name]
	return ok, nil
}

// Inspect returns a container's full description.
func (c *Client) Inspect(ctx context.Context, nameOrID string) (container.InspectResponse, error) {
	r, err := c.api.ContainerInspect(ctx, nameOrID)
	return r, wrap("inspect "+nameOrID, err)
}

// ImageID returns the ID of the image ref, or ErrNotFound.
func (c *Client) ImageID(ctx context.Context, ref string) (string, error) {
	r, err := c.api.ImageInspect(ctx, ref)
	if err != nil {
		return "", wrap("image inspect "+ref, err)
	}
	return r.ID, nil
}

// SaveImage writes `docker save ref` to w.
func (c *Client) SaveImage(ctx context.Context, ref string, w io.Writer) error {
	rc, err := c.api.ImageSave(ctx, []string{ref})
	if err != nil {
		return wrap("save "+ref, err)
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	return wrap("save "+ref, err)
}

// TagIfFree names image id ref, unless ref already names an image here
// (re-pointing it would change what this host's own containers and users
// get); it reports whether it tagged.
func (c *Client) TagIfFree(ctx context.Context, id, ref string) (bool, error) {
	if _, err := c.api.ImageInspect(ctx, ref); err == nil {
		return false, nil
	} else if !cerrdefs.IsNotFound(err) {
		return false, wrap("image inspect "+ref, err)
	}
	return true, wrap("tag "+ref, c.api.ImageTag(ctx, id, ref))
}

// LoadImage runs `docker load` on r and returns what it loaded: the
// references and image IDs dockerd names.
func (c *Client) LoadImage(ctx context.Context, r io.Reader) ([]string, error) {
	resp, err := c.api.ImageLoad(ctx, r, client.ImageLoadWithQuiet(true))
	if err != nil {
		return nil, wrap("load", err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, wrap("load", err)
	}
	if strings.Contains(string(out), `"error"`) {
		return nil, fmt.Errorf("docker load: %s", strings.TrimSpace(string(out)))
	}
	return loadedImages(out), nil
}

// loadedImages reads `docker load`'s JSON messages for what was loaded.
func loadedImages(out []byte) []string {
	var loaded []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var m struct {
			Stream string `json:"stream"`
		}
		if dec.Decode(&m) != nil {
			return loaded
		}
		line := strings.TrimSpace(m.Stream)
		if ref, ok := strings.CutPrefix(line, "Loaded image ID: "); ok {
			loaded = append(loaded, ref)
		} else if ref, ok := strings.CutPrefix(line, "Loaded image: "); ok {
			loaded = append(loaded, ref)
		}
	}
}

// FindImage returns the ID of the first of refs that names an image here
// whose layers are layers (any layers when layers is nil), or ErrNotFound.
// An image's ID depends on Docker's image store (its config's digest in the
// graph driver store, its manifest's in the containerd store), so the same
// image has different IDs on two hosts; its layers do not change.
func (c *Client) FindImage(ctx context.Context, refs []string, layers []string) (string, error) {
	for _, ref := range refs {
		if ref == "" {
			continue
		}
		r, err := c.api.ImageInspect(ctx, ref)
		if err != nil {
			if !cerrdefs.IsNotFound(err) {
				return "", wrap("image inspect "+ref, err)
			}
			continue
		}
		if layers == nil || slices.Equal(r.RootFS.Layers, layers) {
			return r.ID, nil
		}
	}
	return "", fmt.Errorf("%w: no image here among %v with the container's layers", ErrNotFound, refs)
}

// NetworkInfo is what dockmove needs to know of a network on this host.
type NetworkInfo struct {
	Subnet   string // the first IPv4 subnet
	Driver   string // bridge, macvlan, ipvlan, ...
	Parent   string // macvlan and ipvlan: the host interface underneath
	Internal bool   // no way out of it: no gateway for its containers
	IPv6     bool   // its containers get IPv6 addresses
	Subnet6  string // its first IPv6 subnet, if any
	Scope    string // local, or swarm when a swarm manager hands out its addresses
	// Ranges are where this host's Docker picks its containers' IPv4
	// addresses: each pool's --ip-range, or its subnet; Ranges6 the same
	// for IPv6.
	Ranges, Ranges6 []string
}

// Allocates reports whether this host's Docker hands out address ip on
// the network by itself.
func (i NetworkInfo) Allocates(ip string) bool {
	a := net.ParseIP(ip)
	for _, r := range slices.Concat(i.Ranges, i.Ranges6) {
		if _, n, err := net.ParseCIDR(r); err == nil && a != nil && n.Contains(a) {
			return true
		}
	}
	return false
}

// Network describes the network name.
func (c *Client) Network(ctx context.Context, name string) (NetworkInfo, error) {
	n, err := c.api.NetworkInspect(ctx, name, network.InspectOptions{})
	if err != nil {
		return NetworkInfo{}, wrap("network inspect "+name, err)
	}
	info := NetworkInfo{Driver: n.Driver, Parent: n.Options["parent"], Internal: n.Internal, IPv6: n.EnableIPv6, Scope: n.Scope}
	for _, cfg := range n.IPAM.Config {
		r := cfg.IPRange
		if r == "" {
			r = cfg.Subnet
		}
		if strings.Contains(cfg.Subnet, ":") {
			if info.Subnet6 == "" {
				info.Subnet6 = cfg.Subnet
			}
			info.Ranges6 = append(info.Ranges6, r)
			continue
		}
		if info.Subnet == "" {
			info.Subnet = cfg.Subnet
		}
		info.Ranges = append(info.Ranges, r)
	}
	if info.Subnet == "" {
		return info, fmt.Errorf("docker: network %s has no IPv4 subnet", name)
	}
	return info, nil
}

// Volume returns a volume's mount point on this host.
func (c *Client) Volume(ctx context.Context, name string) (string, error) {
	v, err := c.api.VolumeInspect(ctx, name)
	if err != nil {
		return "", wrap("volume inspect "+name, err)
	}
	return v.Mountpoint, nil
}

// LabelAnonymousVolume marks a volume Docker made for one container (Docker
// 23 and later label them so; `docker rm -v` and `volume prune` remove
// them).
const LabelAnonymousVolume = "com.docker.volume.anonymous"

// AnonymousVolume reports whether the volume name, mounted at dest, was
// made by Docker for its container: labelled so (Docker 23 and later), or,
// for older Dockers that do not label, named by a 64-digit hex ID and
// declared as one of the container's volumes (`-v /path`, VOLUME).
func (c *Client) AnonymousVolume(ctx context.Context, name, dest string, declared map[string]struct{}) bool {
	if v, err := c.api.VolumeInspect(ctx, name); err == nil {
		if _, ok := v.Labels[LabelAnonymousVolume]; ok {
			return true
		}
	}
	_, isDeclared := declared[dest]
	return isDeclared && hexID.MatchString(name)
}

var hexID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// ErrVolumeTaken: a volume of that name exists and was not made for this
// migration.
var ErrVolumeTaken = errors.New("volume exists and is not this migration's")

// CreateVolume makes a new volume carrying labels and returns its mount
// point. Docker's create returns an existing volume of the same name
// unchanged; such a volume (made by someone else since it was checked) is
// refused with ErrVolumeTaken, never adopted.
func (c *Client) CreateVolume(ctx context.Context, name string, labels map[string]string) (string, error) {
	v, err := c.api.VolumeCreate(ctx, volume.CreateOptions{Name: name, Labels: labels})
	if err != nil {
		return "", wrap("volume create "+name, err)
	}
	for k, want := range labels {
		if v.Labels[k] != want {
			return "", fmt.Errorf("volume %q: %w", name, ErrVolumeTaken)
		}
	}
	return v.Mountpoint, nil
}

// RemoveVolume deletes a volume.
func (c *Client) RemoveVolume(ctx context.Context, name string) error {
	return wrap("volume rm "+name, c.api.VolumeRemove(ctx, name, true))
}

// Create makes a stopped container from spec with the given OCI runtime and
// extra labels, and returns its ID.
func (c *Client) Create(ctx context.Context, spec protocol.ContainerSpec, runtime string, labels map[string]string) (string, error) {
	api, err := c.APIVersion(ctx)
	if err != nil {
		return "", err
	}
	cfg, host, netcfg, err := createConfig(spec, runtime, labels, api)
	if err != nil {
		return "", err
	}
	// Keep the user's image reference when it names the same image here.
	if id, err := c.ImageID(ctx, spec.Image); err == nil && id == spec.ImageID {
		cfg.Image = spec.Image
	}
	resp, err := c.api.ContainerCreate(ctx, cfg, host, netcfg, nil, spec.Name)
	if err != nil {
		return "", wrap("create "+spec.Name, err)
	}
	for _, n := range spec.Networks {
		if _, done := netcfg.EndpointsConfig[n.Name]; done {
			continue
		}
		// Before API 1.44 a create attaches one network; Docker wires
		// the others connected before the start with it.
		if err := c.api.NetworkConnect(ctx, n.Name, resp.ID, endpoint(n, api, nil)); err != nil {
			return resp.ID, wrap("network connect "+n.Name, err)
		}
	}
	return resp.ID, nil
}

// createConfig is Docker's create request for spec at API version api.
func createConfig(spec protocol.ContainerSpec, runtime string, labels map[string]string, api string) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
	all := map[string]string{}
	for k, v := range spec.Labels {
		all[k] = v
	}
	for k, v := range labels {
		all[k] = v
	}
	exposed := nat.PortSet{}
	for _, p := range spec.ExposedPorts {
		exposed[nat.Port(p)] = struct{}{}
	}
	cfg := &container.Config{
		Hostname: spec.Hostname, Domainname: spec.Domainname, User: spec.User,
		WorkingDir: spec.WorkingDir, Env: spec.Env, Cmd: spec.Cmd, Entrypoint: spec.Entrypoint,
		Tty: spec.TTY, OpenStdin: spec.OpenStdin, StopSignal: spec.StopSignal, ExposedPorts: exposed,
	}
	if len(spec.DockerConfig) > 0 {
		// The source's whole Config (healthcheck, stop timeout, shell, ...).
		if err := CheckConfig(spec.DockerConfig, api); err != nil {
			return nil, nil, nil, err
		}
		var err error
		if cfg, err = carriedConfig(spec.DockerConfig); err != nil {
			return nil, nil, nil, err
		}
	}
	cfg.Image, cfg.Labels = spec.ImageID, all
	host := &container.HostConfig{}
	if len(spec.DockerHostConfig) > 0 {
		// Limits, DNS, logging, ...: what CheckHostConfig accepted.
		if err := CheckHostConfig(spec.DockerHostConfig); err != nil {
			return nil, nil, nil, err
		}
		if err := carriedHostConfig(spec.DockerHostConfig, host); err != nil {
			return nil, nil, nil, err
		}
	}
	host.Runtime = runtime
	host.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyMode(spec.RestartPolicy), MaximumRetryCount: spec.RestartMax}
	host.CapAdd, host.CapDrop = spec.CapAdd, spec.CapDrop
	for _, v := range spec.Volumes {
		if v.Anonymous {
			// Docker makes it, unnamed: the container's own, removed by
			// `docker rm -v` here as on the source (VolumeMounts then
			// finds its name, for the data to go in). Declared as
			// `-v /path` declares it; only --mount makes one read-only.
			if v.ReadOnly {
				host.Mounts = append(host.Mounts, mount.Mount{Type: mount.TypeVolume, Target: v.Destination, ReadOnly: true})
				continue
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[v.Destination] = struct{}{}
			continue
		}
		mode := ""
		if v.ReadOnly {
			mode = ":ro"
		}
		host.Binds = append(host.Binds, v.Name+":"+v.Destination+mode)
	}
	for _, b := range spec.Binds {
		// The destination checked the source path against its own policy.
		mode := ""
		if b.ReadOnly {
			mode = ":ro"
		}
		host.Binds = append(host.Binds, b.Source+":"+b.Destination+mode)
	}
	netcfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
	host.NetworkMode = "none"
	for i, n := range spec.Networks {
		if i == 0 {
			host.NetworkMode = container.NetworkMode(n.Name)
		} else if versions.LessThan(api, SeveralAtCreate) {
			break // connected after the create (Create)
		}
		netcfg.EndpointsConfig[n.Name] = endpoint(n, api, cfg)
	}
	return cfg, host, netcfg, nil
}

// endpoint is the endpoint settings of network n at API version api; the
// first network's MAC goes in cfg before API 1.44.
func endpoint(n protocol.NetworkSpec, api string, cfg *container.Config) *network.EndpointSettings {
	ep := &network.EndpointSettings{Aliases: n.Aliases}
	switch {
	case versions.LessThan(api, PerEndpointMAC):
		if cfg != nil {
			//lint:ignore SA1019 the only MAC setting before API 1.44 (Docker 20.10 speaks 1.41)
			cfg.MacAddress = n.MAC
		}
	default:
		// From 1.44 the MAC is the endpoint's; Docker 28 ignores the
		// container-level field and picks a random one.
		ep.MacAddress = n.MAC
	}
	if n.IPv4 != "" || n.IPv6 != "" {
		ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: n.IPv4, IPv6Address: n.IPv6}
	}
	if !versions.LessThan(api, InterfaceNames) {
		ep.GwPriority = n.GwPriority
		if n.Interface != "" {
			ep.DriverOpts = map[string]string{IfnameOption: n.Interface}
		}
	}
	return ep
}

// IfnameOption is the endpoint driver option naming the container's
// interface on a network (Docker 28).
const IfnameOption = "com.docker.network.endpoint.ifname"

// API versions of network features.
const (
	// SeveralAtCreate: a create request may attach several networks;
	// before it, the others are connected to the created container.
	SeveralAtCreate = "1.44"
	// PerEndpointMAC: the MAC address is each endpoint's; before it, the
	// container's, set on the network it is created with.
	PerEndpointMAC = "1.44"
	// WiresAfterCreate: Docker (26) wires a container's network after
	// runc's create (so after the container's sysctls apply), not in
	// runc's prestart hook.
	WiresAfterCreate = "1.45"
	// AdvertisesAddresses: Docker (27) sends unsolicited ARP and
	// neighbour advertisements for an endpoint's addresses as it wires it.
	AdvertisesAddresses = "1.46"
	// InterfaceNames: an endpoint may name its interface (IfnameOption)
	// and say which network gives the default route (GwPriority). Before
	// it, Docker names them itself, in an order of its own.
	InterfaceNames = "1.48"
)

// Start starts a created container.
func (c *Client) Start(ctx context.Context, id string) error {
	return wrap("start "+id, c.api.ContainerStart(ctx, id, container.StartOptions{}))
}

// Remove force-removes a container (killing it if it runs).
func (c *Client) Remove(ctx context.Context, id string) error {
	return c.remove(ctx, id, false)
}

// VolumeMounts names the volumes mounted in container id, by where they
// are mounted.
func (c *Client) VolumeMounts(ctx context.Context, id string) (map[string]string, error) {
	r, err := c.Inspect(ctx, id)
	if err != nil {
		return nil, err
	}
	byDest := map[string]string{}
	for _, m := range r.Mounts {
		if m.Type == mount.TypeVolume && m.Name != "" {
			byDest[m.Destination] = m.Name
		}
	}
	return byDest, nil
}

// RemoveWithAnonymousVolumes is Remove, removing the volumes Docker made
// for the container too (`docker rm -v`): after a move their data lives on
// the destination. Named volumes stay.
func (c *Client) RemoveWithAnonymousVolumes(ctx context.Context, id string) error {
	return c.remove(ctx, id, true)
}

func (c *Client) remove(ctx context.Context, id string, volumes bool) error {
	err := c.api.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: volumes})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	return wrap("rm "+id, err)
}

// Pause freezes a container (cgroup freezer); Unpause thaws it.
func (c *Client) Pause(ctx context.Context, id string) error {
	return wrap("pause "+id, c.api.ContainerPause(ctx, id))
}

// Unpause thaws a container that Pause froze; a running one is left as it is.
func (c *Client) Unpause(ctx context.Context, id string) error {
	r, err := c.Inspect(ctx, id)
	if err != nil {
		return err
	}
	if r.State == nil || !r.State.Paused {
		return nil
	}
	return wrap("unpause "+id, c.api.ContainerUnpause(ctx, id))
}

// SetRestartPolicy changes a container's restart policy.
func (c *Client) SetRestartPolicy(ctx context.Context, id, name string, max int) error {
	_, err := c.api.ContainerUpdate(ctx, id, container.UpdateConfig{RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyMode(name), MaximumRetryCount: max}})
	return wrap("update "+id, err)
}

// ContainersWithLabel lists the IDs of all containers (running or not)
// carrying label key (with any value), with their value.
func (c *Client) ContainersWithLabel(ctx context.Context, key string) (map[string]string, error) {
	list, err := c.api.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", key))})
	if err != nil {
		return nil, wrap("ps", err)
	}
	out := map[string]string{}
	for _, s := range list {
		out[s.ID] = s.Labels[key]
	}
	return out, nil
}

// RunningContainers names the running containers, sorted, carrying every
// label of labels (KEY or KEY=VALUE, as docker ps --filter label= takes).
func (c *Client) RunningContainers(ctx context.Context, labels []string) ([]string, error) {
	f := filters.NewArgs(filters.Arg("status", "running"))
	for _, l := range labels {
		f.Add("label", l)
	}
	list, err := c.api.ContainerList(ctx, container.ListOptions{Filters: f})
	if err != nil {
		return nil, wrap("ps", err)
	}
	var out []string
	for _, s := range list {
		if len(s.Names) > 0 {
			out = append(out, strings.TrimPrefix(s.Names[0], "/"))
		}
	}
	sort.Strings(out)
	return out, nil
}

// ContainersUsingRuntime lists containers created with the OCI runtime name.
func (c *Client) ContainersUsingRuntime(ctx context.Context, name string) ([]string, error) {
	list, err := c.api.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return nil, wrap("ps", err)
	}
	var out []string
	for _, s := range list {
		r, err := c.api.ContainerInspect(ctx, s.ID)
		if err != nil {
			continue
		}
		if r.HostConfig != nil && r.HostConfig.Runtime == name {
			out = append(out, strings.TrimPrefix(r.Name, "/"))
		}
	}
	return out, nil
}

// ExitInfo describes a container's state in one line, for error messages.
func ExitInfo(r container.InspectResponse) string {
	if r.State == nil {
		return "no state"
	}
	return "status=" + string(r.State.Status) + " exit=" + strconv.Itoa(r.State.ExitCode) + " error=" + r.State.Error
}

// RemoveImage deletes an image (refused by Docker while a container uses it).
func (c *Client) RemoveImage(ctx context.Context, id string) error {
	_, err := c.api.ImageRemove(ctx, id, image.RemoveOptions{PruneChildren: true})
	return wrap("rmi "+id, err)
}

// RootDir is dockerd's data root, where layers and volumes live.
func (c *Client) RootDir(ctx context.Context) (string, error) {
	root, _, err := c.Storage(ctx)
	return root, err
}

// Storage returns dockerd's data root and its storage driver ("overlay2",
// or "overlayfs" for the containerd image store's snapshotter).
func (c *Client) Storage(ctx context.Context) (root, driver string, err error) {
	info, err := c.api.Info(ctx)
	if err != nil {
		return "", "", wrap("info", err)
	}
	return info.DockerRootDir, info.Driver, nil
}

// ImageSize is the size of an image's layers.
func (c *Client) ImageSize(ctx context.Context, ref string) (int64, error) {
	r, err := c.api.ImageInspect(ctx, ref)
	if err != nil {
		return 0, wrap("image inspect "+ref, err)
	}
	return r.Size, nil
}

// ImageLayers returns an image's layer diff IDs, base first.
func (c *Client) ImageLayers(ctx context.Context, ref string) ([]string, error) {
	r, err := c.api.ImageInspect(ctx, ref)
	if err != nil {
		return nil, wrap("image inspect "+ref, err)
	}
	return r.RootFS.Layers, nil
}

// AllImageLayers returns the layer chains of every local image.
func (c *Client) AllImageLayers(ctx context.Context) ([][]string, error) {
	list, err := c.api.ImageList(ctx, image.ListOptions{All: true})
	if err != nil {
		return nil, wrap("images", err)
	}
	var out [][]string
	for _, s := range list {
		if layers, err := c.ImageLayers(ctx, s.ID); err == nil {
			out = append(out, layers)
		}
	}
	return out, nil
}

// HostInfo reports the daemon's stack: its version, containerd's and
// runc's as it reports them, the kernel and the cgroup version it runs on.
func (c *Client) HostInfo(ctx context.Context) (transfer.HostInfo, error) {
	v, err := c.api.ServerVersion(ctx)
	if err != nil {
		return transfer.HostInfo{}, wrap("version", err)
	}
	info, err := c.api.Info(ctx)
	if err != nil {
		return transfer.HostInfo{}, wrap("info", err)
	}
	h := transfer.HostInfo{Docker: transfer.CleanVersion(v.Version), Kernel: transfer.CleanVersion(info.KernelVersion)}
	for _, comp := range v.Components {
		switch comp.Name {
		case "containerd":
			h.Containerd = transfer.CleanVersion(comp.Version)
		case "runc":
			h.Runc = transfer.CleanVersion(comp.Version)
		}
	}
	h.Cgroup, _ = strconv.Atoi(info.CgroupVersion)
	return h, nil
}
