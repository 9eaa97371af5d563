//go:build linux

package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/versions"

	"github.com/dockmove/dockmove/internal/criu"
	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/internal/reserve"
	"github.com/dockmove/dockmove/internal/restoreruntime"
	"github.com/dockmove/dockmove/netrewire"
	"github.com/dockmove/dockmove/protocol"
)

// A target is what a migration moves from this host: a Docker container
// or a plain process tree (migrate-src --pid). The migration's steps are
// the same for both (source.go); what differs is asked of the target, as
// runc asks its two kinds of parent process.
type target interface {
	// inspect reads the target and refuses, before anything is frozen,
	// what cannot move.
	inspect(ctx context.Context) error
	// lockKey names the target among this host's migrations.
	lockKey() string
	// containerID is Docker's ID of the container; "" for a process.
	containerID() string
	// address is the IPv4 address that moves with the target (its first
	// network's, eth0's); "" if none.
	address() string
	// sizes estimates what the destination will store.
	sizes(ctx context.Context) protocol.Sizes
	// describe fills in what the preflight says about the target; it
	// runs after sizes, which walked the target's files.
	describe(ctx context.Context, pre *protocol.Preflight) error
	// preflightDone removes what describe left for the destination to
	// check, once it has answered.
	preflightDone()
	// dumpSpec describes the tree CRIU dumps and lists what ships beside
	// CRIU's images, by stream name.
	dumpSpec(ctx context.Context) (criu.DumpSpec, []namedDir, error)
	// dumped checks, with the tree still frozen after CRIU's dump, that
	// the dump holds all that must move; an error fails the dump.
	dumped() error
	// liveTree is the running tree's root (its PID here) once inspect
	// ran, and the target's own reason, found without freezing, that a
	// dump would not hold all that must move (dumped's check).
	liveTree() (root int, refusal error)
	// keepDown has Docker leave the original down once CRIU ends it.
	keepDown(ctx context.Context) error
	// running reports whether the dumped original still runs here.
	running(ctx context.Context) bool
	// rollback undoes what keepDown changed and takes the network back
	// for the original, which CRIU has resumed.
	rollback(ctx context.Context, postCopy bool)
	// remove deletes the ended original after the commit.
	remove(ctx context.Context) error
	// reserve keeps, after the commit, the addresses that moved away
	// from this host's own ranges (package reserve), except on the
	// renumbered networks, where the container did not take its address.
	reserve(ctx context.Context, renumbered []string) ([]docker.Reservation, error)
	// moved lists what reserve would keep, for a guard or a recorded
	// commit to reserve in migrate-src's stead, and the image a
	// reservation runs from.
	moved(renumbered []string) ([]movedAddress, string)
}

// namedDir is a directory shipped as the stream of that name.
type namedDir struct{ name, dir string }

// dockerContainer is a Docker container on this host.
type dockerContainer struct {
	s    *source
	dk   *docker.Client
	id   string
	spec protocol.ContainerSpec
	// markers are the shared-storage markers written for the preflight.
	markers []string
	// The original restart policy, restored on rollback.
	restartName    string
	restartMax     int
	restartChanged bool
	// What sizes found for describe: the device nodes of the trees that
	// ship, or why it could not list them.
	devices []protocol.DeviceNode
	scanErr error
	// What dumpSpec found for dumped: the init's PID (here), the
	// healthcheck's command and the container's shell.
	init               int
	healthcheck, shell []string
}

func (c *dockerContainer) inspect(ctx context.Context) error {
	dk, err := docker.New(c.s.cfg.Docker)
	if err != nil {
		return err
	}
	c.dk, c.s.dk = dk, dk
	r, err := dk.Inspect(ctx, c.s.cfg.Container)
	if err != nil {
		return err
	}
	c.id = r.ID
	if c.spec, err = specFromInspect(ctx, dk, r, c.s.cfg.BindMounts); err != nil {
		return err
	}
	if c.spec.DockerHostConfig, err = docker.RemapPorts(c.spec.DockerHostConfig, c.s.cfg.RemapPorts); err != nil {
		return fmt.Errorf("%w: --remap-port: %v", ErrCannotMove, err)
	}
	c.restartName, c.restartMax = c.spec.RestartPolicy, c.spec.RestartMax
	c.setTree(r)
	return checkLimitsReadable(r.State.Pid, procStatus, c.s.criuReadsProc(ctx))
}

// setTree notes what the checks of the running tree need: the init's PID
// (here), the healthcheck's command and the container's shell.
func (c *dockerContainer) setTree(r container.InspectResponse) {
	c.init, c.healthcheck, c.shell = 0, nil, nil
	if r.State != nil {
		c.init = r.State.Pid
	}
	if r.Config != nil {
		if r.Config.Healthcheck != nil {
			c.healthcheck = r.Config.Healthcheck.Test
		}
		c.shell = r.Config.Shell
	}
}

func (c *dockerContainer) lockKey() string     { return c.id }
func (c *dockerContainer) containerID() string { return c.id }

func (c *dockerContainer) address() string {
	if len(c.spec.Networks) == 0 {
		return ""
	}
	return c.spec.Networks[0].IPv4
}

// sizes walks what ships once: for the sizes, and for the device nodes
// and log files that describe announces.
func (c *dockerContainer) sizes(ctx context.Context) protocol.Sizes {
	var z protocol.Sizes
	c.scanErr = errors.New("the container could not be inspected")
	if r, err := c.dk.Inspect(ctx, c.id); err == nil {
		// Deleted-but-open files travel in the images too.
		z.Memory = satAdd(memoryUse(r.State.Pid), ghostBytes(r.State.Pid))
		c.scanErr = c.scanTrees(ctx, r, &z)
	}
	z.Image, _ = c.dk.ImageSize(ctx, c.spec.ImageID)
	return z
}

// scanTrees sums the trees that ship into z and finds their device nodes
// and the container's log files.
func (c *dockerContainer) scanTrees(ctx context.Context, r container.InspectResponse, z *protocol.Sizes) error {
	upper, _, err := writableLayer(r)
	if err != nil {
		return err
	}
	trees, err := c.trees(ctx, upper)
	if err != nil {
		return err
	}
	c.devices = nil
	for _, t := range trees {
		size, devs, err := scanTree(t, protocol.MaxDeviceNodes-len(c.devices))
		if err != nil {
			return err
		}
		c.devices = append(c.devices, devs...)
		switch {
		case t.name == protocol.StreamRootfs:
			z.Rootfs = size
		case strings.HasPrefix(t.name, "volume-"):
			z.Volumes = satAdd(z.Volumes, size)
		default:
			z.Binds = satAdd(z.Binds, size)
		}
	}
	var dockerRoot string
	if r.HostConfig.LogConfig.Type == protocol.LogsLocal {
		if dockerRoot, err = c.dk.RootDir(ctx); err != nil {
			return err
		}
	}
	c.s.logs, z.Logs = containerLogs(r, dockerRoot)
	return nil
}

func (c *dockerContainer) describe(ctx context.Context, pre *protocol.Preflight) error {
	layers, err := c.dk.ImageLayers(ctx, c.spec.ImageID)
	if err != nil {
		return err
	}
	if c.scanErr != nil {
		return fmt.Errorf("listing what ships: %w", c.scanErr)
	}
	pre.Devices = c.devices
	if c.s.logs != nil {
		pre.Logs = c.s.logs.driver
	}
	if err := c.writeMarkers(); err != nil {
		return err
	}
	pre.Container, pre.ImageLayers = c.spec, layers
	return nil
}

// writeMarkers writes, in each shared bind mount's directory, a file of a
// name no one can guess, for the destination to find through its own path.
func (c *dockerContainer) writeMarkers() error {
	for _, b := range c.spec.Binds {
		if b.Mode != protocol.BindShared {
			continue
		}
		dir := b.Source
		if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
			dir = filepath.Dir(dir) // a file shared: its directory is
		}
		p := filepath.Join(dir, b.Marker)
		if err := os.WriteFile(p, []byte(b.Marker), 0o600); err != nil {
			return fmt.Errorf("bind mount %s: writing the shared-storage marker: %w", b.Destination, err)
		}
		c.markers = append(c.markers, p)
	}
	return nil
}

// preflightDone removes the shared-storage markers.
func (c *dockerContainer) preflightDone() {
	for _, p := range c.markers {
		if err := os.Remove(p); err != nil {
			c.s.log.Warn("removing a shared-storage marker", "file", p, "err", err)
		}
	}
	c.markers = nil
}

// dumpSpec describes the container's tree; beside the images ship its
// writable layer and its volumes.
func (c *dockerContainer) dumpSpec(ctx context.Context) (criu.DumpSpec, []namedDir, error) {
	r, err := c.dk.Inspect(ctx, c.id)
	if err != nil {
		return criu.DumpSpec{}, nil, err
	}
	spec, err := dumpSpec(r)
	if err != nil {
		return spec, nil, err
	}
	c.setTree(r)
	c.init = spec.Pid
	if err := checkNoExecs(c.init, c.healthcheck, c.shell); err != nil {
		return spec, nil, err
	}
	upper, _, err := writableLayer(r)
	if err != nil {
		return spec, nil, err
	}
	extra, err := c.trees(ctx, upper)
	return spec, extra, err
}

// dumped: a process docker exec started between dumpSpec's check and
// the freeze is frozen with the container but not in the dump.
func (c *dockerContainer) dumped() error {
	return checkNoExecs(c.init, c.healthcheck, c.shell)
}

func (c *dockerContainer) liveTree() (int, error) { return c.init, c.dumped() }

// trees lists what ships beside CRIU's images, by stream: the writable
// layer (upper), the volumes and the copied bind mounts.
func (c *dockerContainer) trees(ctx context.Context, upper string) ([]namedDir, error) {
	extra := []namedDir{{protocol.StreamRootfs, upper}}
	for i, v := range c.spec.Volumes {
		mp, err := c.dk.Volume(ctx, v.Name)
		if err != nil {
			return nil, err
		}
		extra = append(extra, namedDir{protocol.VolumeStream(i), mp})
	}
	for i, b := range c.spec.Binds {
		if b.Mode == protocol.BindCopy {
			extra = append(extra, namedDir{protocol.BindStream(i), b.Source})
		}
	}
	return extra, nil
}

func (c *dockerContainer) keepDown(ctx context.Context) error {
	if c.restartName == "" || c.restartName == "no" {
		return nil
	}
	c.restartChanged = true
	// The guard learns the policy first: a kill between the two restores it.
	c.s.guardUpdate(func(p *guardPlan) { p.Restart = &restartPolicy{Name: c.restartName, Max: c.restartMax} })
	return c.dk.SetRestartPolicy(ctx, c.id, "no", 0)
}

func (c *dockerContainer) running(ctx context.Context) bool {
	r, err := c.dk.Inspect(ctx, c.id)
	return err != nil || (r.State != nil && r.State.Running)
}

// rollback restores the restart policy and, after a failed post-copy, the
// destination's copy ran with the same address and goes on transmitting
// until it notices the dead link and removes itself: the address is
// announced until that must have happened, or switches would keep sending
// the container's traffic there.
func (c *dockerContainer) rollback(ctx context.Context, postCopy bool) {
	if c.restartChanged {
		if err := c.dk.SetRestartPolicy(ctx, c.id, c.restartName, c.restartMax); err != nil {
			c.s.log.Error("rollback: restore restart policy", "err", err)
		}
	}
	// The destination may have announced the address already; claim it
	// back so traffic returns to this host.
	r, err := c.dk.Inspect(ctx, c.id)
	if err != nil || r.State == nil || !r.State.Running {
		return
	}
	c.s.unlockNetwork(r.State.Pid)
	if len(c.spec.Networks) == 0 {
		return
	}
	count, gap := 3, 50*time.Millisecond
	if postCopy {
		tc := c.s.cfg.Transfer
		gap = 500 * time.Millisecond
		count = int((tc.KeepAlive+tc.DeadPeerTimeout)/gap) + 4
		c.s.stageDetail("reclaiming the address", " while the destination's copy winds down")
	}
	if _, err := netrewire.Announce(r.State.Pid, count, gap); err != nil {
		c.s.log.Warn("rollback: announce address", "err", err)
	}
}

// remove deletes the container with its anonymous volumes, which moved
// with it; named ones stay.
func (c *dockerContainer) remove(ctx context.Context) error {
	return c.dk.RemoveWithAnonymousVolumes(ctx, c.id)
}

func (c *dockerContainer) reserve(ctx context.Context, renumbered []string) ([]docker.Reservation, error) {
	moved, image := c.moved(renumbered)
	if len(moved) == 0 {
		return nil, nil
	}
	waitStopped(ctx, c.dk, c.id)
	return reserveAway(ctx, c.dk, c.s.cfg.WorkDir, moved, image, c.s.log)
}

// waitStopped waits (up to 10 s) until Docker has seen the processes of
// container id end (CRIU has just ended them): only then does it give the
// container's addresses back to its allocator.
func waitStopped(ctx context.Context, dk *docker.Client, id string) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(100 * time.Millisecond) {
		if r, err := dk.Inspect(ctx, id); err != nil || r.State == nil || !r.State.Running {
			return
		}
	}
}

// moved lists the addresses the container takes along (those of its
// networks but the renumbered ones) and the image a reservation of them
// runs from.
func (c *dockerContainer) moved(renumbered []string) ([]movedAddress, string) {
	var out []movedAddress
	for _, n := range c.spec.Networks {
		if n.IPv4 != "" && !slices.Contains(renumbered, n.Name) {
			out = append(out, movedAddress{Network: n.Name, IPv4: n.IPv4, IPv6: n.IPv6})
		}
	}
	return out, c.spec.ImageID
}

// movedAddress is an address that a container took along to another
// host, as it had it on network Network.
type movedAddress struct {
	Network string `json:"network"`
	IPv4    string `json:"ipv4"`
	IPv6    string `json:"ipv6,omitempty"`
}

// reserveAway keeps, on the host dk manages, the addresses a container
// took along (moved) that came from this host's own range of a network
// shared with other hosts (package reserve): whoever completes the commit
// here calls it (migrate-src, its guard, or the delivery of a recorded
// commit). An address already reserved stays as it is. image is a root
// for the reservation (the moved container's); workDir holds the holder.
func reserveAway(ctx context.Context, dk *docker.Client, workDir string, moved []movedAddress, image string, log *slog.Logger) ([]docker.Reservation, error) {
	var out []docker.Reservation
	var errs []error
	holder, runtime := "", ""
	for _, n := range moved {
		info, err := dk.Network(ctx, n.Network)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		// Only a network shared with other hosts lets an address move;
		// only this host's own range is this host's to give out again.
		if !sharedLink(info.Driver) || !info.Allocates(n.IPv4) {
			continue
		}
		if r, ok, err := dk.FindReservation(ctx, n.Network, n.IPv4); err == nil && ok {
			out = append(out, r) // reserved already (earlier in this commit)
			continue
		}
		if holder == "" {
			if runtime, err = reservationRuntime(ctx, dk); err != nil {
				return out, err
			}
			if holder, err = reserve.Install(filepath.Join(workDir, "reserve")); err != nil {
				return out, err
			}
		}
		ip6 := ""
		if n.IPv6 != "" && info.Allocates(n.IPv6) {
			ip6 = n.IPv6 // this host would hand it out too
		}
		r, err := dk.Reserve(ctx, n.Network, n.IPv4, ip6, image, holder, runtime)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if r.IPv6 != ip6 {
			errs = append(errs, fmt.Errorf("the IPv6 address %s on %s is not reserved: this host's Docker (26 or later) can hold it "+
				"only in a reservation under dockmove's runtime, which is not installed here (migrate-dst install-runtime); it may give the address to another container", ip6, n.Network))
		}
		log.Info("address reserved here while the container lives elsewhere", "network", n.Network, "address", n.IPv4, "ipv6", r.IPv6, "reservation", reserve.Name(n.Network, n.IPv4))
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// reservationRuntime is the OCI runtime a reservation runs under here:
// dockmove's where installed (it keeps the reservation from taking any
// packet: package restoreruntime); else Docker's own where Docker does not
// advertise addresses (docker.AdvertisesAddresses), since nothing then
// sends the moved container's traffic to the reservation.
func reservationRuntime(ctx context.Context, dk *docker.Client) (string, error) {
	if ok, err := dk.HasRuntime(ctx, restoreruntime.Name); err == nil && ok {
		return restoreruntime.Name, nil
	}
	api, err := dk.APIVersion(ctx)
	if err != nil {
		return "", err
	}
	if versions.LessThan(api, docker.AdvertisesAddresses) {
		return "", nil
	}
	return "", fmt.Errorf("this host's Docker (API %s) advertises an address as it attaches a container, which would draw the moved container's "+
		"clients to a reservation; install dockmove's runtime here (migrate-dst install-runtime) for this host to keep reservations", api)
}

// sharedLink reports whether driver's networks are links shared with other
// hosts, where a container's address is portable.
func sharedLink(driver string) bool { return driver == "macvlan" || driver == "ipvlan" }

// driverRefusal says why a container on network name, of driver, cannot
// move ("": it can). Both agents ask: the source before freezing, the
// destination whatever the source says.
//
// ipvlan: every interface on an ipvlan link has the host interface's MAC
// address, so the container's differs on each host, and Docker refuses to
// give an ipvlan endpoint a MAC (libnetwork: "ipvlan interfaces do not
// support custom mac address assignment"); the restore, which brings the
// interface back as the source had it, cannot. Not tried on a kernel with
// ipvlan (this project's lab kernel lacks it): refused until it is.
func driverRefusal(name, driver string) string {
	if driver == "overlay" {
		return swarmRefusal(name)
	}
	if driver == "ipvlan" {
		return fmt.Sprintf("network %q uses the ipvlan driver, which dockmove does not move containers on: an ipvlan interface takes "+
			"its host's MAC address and Docker sets no other, so the container's interface cannot come back as it was (use macvlan or a bridge)", name)
	}
	return ""
}

// swarmRefusal says why a container on network name, whose addresses a
// swarm manager hands out (an overlay network, or any network of swarm
// scope), does not move. Measured on Docker 20.10 with an attachable
// overlay: host2's start asked the manager for the container's address,
// which host1's frozen container still held, waited 20 s and failed (the
// original resumed). Moving such a container needs its attachment given
// up on host1 inside the freeze, and taken again on a rollback.
func swarmRefusal(name string) string {
	return fmt.Sprintf("network %q is a swarm network: the swarm's manager hands out its addresses for the whole cluster and does not give "+
		"the container's address to the destination while this host's container holds it, so dockmove does not move containers on it yet "+
		"(detach it with `docker network disconnect`, or use a macvlan or bridge network both hosts have)", name)
}

// processTree is a plain process tree, rooted at a process of this host.
type processTree struct {
	s    *source
	pid  int
	spec *protocol.ProcessSpec
}

// inspect checks that the process exists and names it.
func (p *processTree) inspect(ctx context.Context) error {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.pid))
	if err != nil {
		return fmt.Errorf("%w: process %d: %v", ErrCannotMove, p.pid, err)
	}
	if p.pid == os.Getpid() {
		return fmt.Errorf("%w: process %d is migrate-src itself", ErrCannotMove, p.pid)
	}
	p.spec = &protocol.ProcessSpec{Name: processName(string(comm))}
	if err := checkLimitsReadable(p.pid, procStatus, p.s.criuReadsProc(ctx)); err != nil {
		return err
	}
	if !initOfPIDNamespace(p.pid) {
		p.s.log.Warn("the process is not the init of its own PID namespace: the destination must have its PIDs free",
			"pid", p.pid, "hint", "start it with unshare --pid --fork")
	}
	return nil
}

func (p *processTree) lockKey() string     { return fmt.Sprintf("pid-%d", p.pid) }
func (p *processTree) containerID() string { return "" }
func (p *processTree) address() string     { return "" }

func (p *processTree) sizes(context.Context) protocol.Sizes {
	return protocol.Sizes{Memory: satAdd(treeRSS(p.pid), ghostBytes(p.pid))}
}

func (p *processTree) describe(_ context.Context, pre *protocol.Preflight) error {
	pre.Process = p.spec
	return nil
}

// dumped: a process tree is whole by definition.
func (p *processTree) dumped() error { return nil }

func (p *processTree) liveTree() (int, error) { return p.pid, nil }

func (p *processTree) moved([]string) ([]movedAddress, string) { return nil, "" }

// dumpSpec: a process tree ships its images only.
func (p *processTree) dumpSpec(context.Context) (criu.DumpSpec, []namedDir, error) {
	return criu.DumpSpec{Pid: p.pid, Process: true}, nil, nil
}

func (p *processTree) preflightDone()                 {}
func (p *processTree) keepDown(context.Context) error { return nil }
func (p *processTree) running(context.Context) bool   { return processAlive(p.pid) }
func (p *processTree) remove(context.Context) error   { return nil }
func (p *processTree) reserve(context.Context, []string) ([]docker.Reservation, error) {
	return nil, nil
}

// rollback takes the network back: CRIU leaves its lock on a resumed tree
// after a failed post-copy.
func (p *processTree) rollback(context.Context, bool) { p.s.unlockNetwork(p.pid) }
