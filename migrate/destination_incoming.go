//go:build linux

package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dockmove/dockmove/internal/criu"
	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/internal/restoreruntime"
	"github.com/dockmove/dockmove/lazypages"
	"github.com/dockmove/dockmove/netrewire"
	"github.com/dockmove/dockmove/predump"
	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

// incoming is one migration arriving at the destination.
type incoming struct {
	srv   *Server
	sess  *transfer.Session
	log   *slog.Logger
	pre   *protocol.Preflight
	state migrationState
	// renumber names the networks where the container cannot keep its
	// address here and the source accepted a new one.
	renumber map[string]bool
	// createNets are the networks to create here for the container.
	createNets []namedNetwork
	// pages is the lazy-pages daemon of a post-copy migration.
	pages *lazypages.Daemon
	// sentinel stops the copy should this process die before the
	// migration is settled (nil: none).
	sentinel *sentinel
	// steps times the freeze here, from the last image received.
	steps *stepClock
	// rounds is how many pre-copy rounds arrived.
	rounds int
	// image is the container's image here (its ID in this host's store).
	image string
	// containerdStore: Docker here keeps images in the containerd image
	// store. The writable layer then waits in Docker's data root (where a
	// rename can reach the container's layer: dockerd mounts its data root
	// on itself) for the runtime to move it in, and an image is sent whole.
	containerdStore bool
	// announced is the restored container's PID once its address was
	// announced from here.
	announced int
	// restored is the restored container's PID once it runs here.
	restored int
	// volumes are the volumes here that the source's volumes land in, in
	// its order.
	volumes []string
	// bindPaths are where the source's bind mounts live here, in its
	// order (a copied one below the destination's bind base).
	bindPaths []string
	// wire counts the bytes that arrive on the session's connection.
	wire *countingConn
	// paged is when a post-copy migration's last page arrived.
	paged time.Time
}

func (in *incoming) name() string {
	switch {
	case in.pre == nil:
		return ""
	case in.pre.Process != nil:
		return "process " + in.pre.Process.Name
	}
	return in.pre.Container.Name
}

// An arrival is what a migration brings to this host: a container,
// created under Docker's management (containerArrival), or a plain process
// tree that CRIU restores outside any container (processArrival). The
// exchange is the same for both (run); what differs is asked of the
// arrival, as the source asks its target.
type arrival interface {
	// accept checks the preflight against this host and its policy and
	// fills in the state to record; an error refuses the migration.
	// release, once run ends, frees what accept reserved.
	accept(ctx context.Context) (ok *protocol.PreflightOK, release func(), err error)
	// prepare makes what the streams land in, once the source was told
	// to go on, and returns where pre-copy rounds go.
	prepare(ctx context.Context) (roundsDir string, err error)
	// receive stores the final dump's streams.
	receive(ctx context.Context) error
	// restore runs the copy here and reports it to the source.
	restore(ctx context.Context) error
}

// run carries the migration whose preflight (in.pre) arrived.
func (in *incoming) run(ctx context.Context) error {
	var a arrival = &containerArrival{incoming: in}
	if in.pre.Process != nil {
		a = &processArrival{in: in}
	}
	return in.runArrival(ctx, a)
}

// runArrival carries the migration to a, each phase within its deadline
// (destination_phases.go).
func (in *incoming) runArrival(ctx context.Context, a arrival) (err error) {
	ok, release, err := a.accept(ctx)
	if err != nil {
		return in.refuse(ctx, err)
	}
	defer release()
	if in.pre.DryRun {
		return in.sess.Send(ctx, ok) // and keep nothing
	}
	in.srv.observer().MigrationStarted(in.pre.Strategy)
	defer in.observeEnd(&err)
	// Settled here, whatever the outcome (after the undo, which runs
	// first): the sentinel goes.
	defer func() { in.sentinel.done() }()
	defer in.undoOnFailure(ctx, &err)
	in.state.Source = in.sess.PeerName()
	if err := in.srv.saveState(&in.state); err != nil {
		return err
	}
	if err := in.sess.Send(ctx, ok); err != nil {
		return err
	}
	var dir string
	if err := in.phase(ctx, "prepare", in.prepareCarries(), func(ctx context.Context) (err error) {
		dir, err = a.prepare(ctx)
		return err
	}); err != nil {
		return err
	}
	// Started now, not in the freeze: process start-up costs milliseconds.
	if in.sentinel, err = startSentinel(in.srv.cfg.SentinelBinary, in.srv.cfg.Docker, in.srv.cfg.WorkDir, sentinelPlan{
		MigrationID: in.pre.MigrationID, Container: in.state.ContainerID, Lazy: in.pre.Strategy.PostCopy(),
		RestoreTimeout: in.srv.cfg.RestoreTimeout,
	}, in.log); err != nil {
		return err
	}
	if in.pre.Strategy.PreCopy() {
		if err := in.receiveRounds(ctx, dir); err != nil {
			return err
		}
	}
	if err := in.phase(ctx, "transfer", in.transferCarries(), func(ctx context.Context) error {
		if err := a.receive(ctx); err != nil {
			return err
		}
		in.steps = startSteps()
		_, err := expectFromSource[*protocol.Restore](ctx, in)
		return err
	}); err != nil {
		return err
	}
	in.steps.mark("await-request")
	if err := a.restore(ctx); err != nil {
		return err
	}
	return in.commit(ctx)
}

// containerArrival is a container, created here under Docker's management.
type containerArrival struct {
	*incoming
	needImage bool // this host lacks the image: the source sends it
}

func (c *containerArrival) accept(ctx context.Context) (*protocol.PreflightOK, func(), error) {
	if c.srv.dk == nil {
		return nil, nil, refuseFor(RefusalUnsupported, errors.New("the destination has no Docker: it accepts only process migrations (migrate-src --pid)"))
	}
	spec := c.pre.Container
	if !c.srv.reserve(spec.Name) {
		return nil, nil, refuseFor(RefusalBusy, fmt.Errorf("another migration of %q is in progress here", spec.Name))
	}
	release := func() { c.srv.release(spec.Name) }
	var err error
	if c.needImage, err = c.check(ctx, spec); err != nil {
		release()
		return nil, nil, err
	}
	ok := &protocol.PreflightOK{NeedImage: c.needImage, NewAddress: c.newAddress(), RestoreMillis: c.srv.lastRestore.Load(),
		Renumbered: slices.Sorted(maps.Keys(c.renumber))}
	if c.needImage {
		ok.HaveLayers = c.haveLayers(ctx)
	}
	ok.MemAvailable = memAvailable()
	if root, err := c.srv.dk.RootDir(ctx); err == nil {
		_, ok.DiskFree, _ = statfsInfo(root)
	}
	c.state = migrationState{MigrationID: c.pre.MigrationID, Name: spec.Name, Phase: phasePrepared}
	return ok, release, nil
}

// prepare receives the image if this host lacked it and creates the
// container, stopped, under the restore runtime.
func (c *containerArrival) prepare(ctx context.Context) (string, error) {
	if c.needImage {
		if err := c.receiveImage(ctx); err != nil {
			return "", err
		}
	}
	if err := c.createShell(ctx); err != nil {
		return "", err
	}
	dir, err := restoreruntime.ContainerDir(c.srv.cfg.RuntimeState, c.state.ContainerID)
	if err == nil && c.pre.Container.InitBinary != nil {
		err = c.receiveInit(ctx, dir)
	}
	if err == nil && c.pre.Logs != "" {
		err = c.receiveLogs(ctx, dir, false)
	}
	return dir, err
}

// undoOnFailure undoes what this host made for the migration when *err
// is set as the run ends (see abandon for what stays).
func (in *incoming) undoOnFailure(ctx context.Context, err *error) {
	if *err == nil {
		return
	}
	if in.pages != nil && in.pages.Forbid() {
		// Every page arrived and the daemon's CLOSE went to the source,
		// whose CRIU ends the original on it: the copy is the container
		// (abandon keeps it), whatever failed since.
		in.state.Phase = phaseComplete
	}
	if in.pages != nil {
		// The copy goes (abandon): before anything else, its network.
		// The source resumes its original at the same time, and until
		// Docker has removed the copy, a frame from it (its side of a
		// moved TCP connection, say) would draw the switch's traffic for
		// the address back here, where clients' connections are reset
		// as the copy dies (seen: a client reset after a killed
		// migrate-src, the original running again on host1).
		if in.restored > 0 && in.state.Phase != phaseComplete {
			if serr := netrewire.Silence(in.restored); serr != nil {
				in.log.Warn("post-copy failed: could not take the copy off the network before removing it", "err", serr)
			}
		}
		in.pages.Stop()
	}
	in.srv.abandon(context.WithoutCancel(ctx), &in.state, *err)
}

// refuse answers the preflight with the reason.
func (in *incoming) refuse(ctx context.Context, err error) error {
	in.srv.refused(ctx, err)
	in.sess.Send(ctx, &transfer.Reject{Reason: err.Error()})
	return err
}

// check verifies, before the source freezes anything, everything this host
// can check: the name is free, the runtime is installed, the network exists
// with the same subnet, the volumes do not exist yet, the policy allows the
// settings, the disk has room. It names every reason it finds at once (a
// Docker it cannot ask ends it at once), and reports whether the image
// must be sent.
func (in *incoming) check(ctx context.Context, spec protocol.ContainerSpec) (needImage bool, err error) {
	dk := in.srv.dk
	var why []error
	refuse := func(class RefusalReason, err error) {
		if err != nil {
			why = append(why, refuseFor(class, err))
		}
	}
	if _, err := dk.Inspect(ctx, spec.Name); err == nil {
		refuse(RefusalConflict, fmt.Errorf("a container named %q already exists on the destination", spec.Name))
	} else if !errors.Is(err, docker.ErrNotFound) {
		return false, err
	}
	refuse(RefusalUnsupported, in.checkStrategy())
	allowed, _ := parseAllowedCaps(in.srv.cfg.AllowCaps) // checked by Validate
	refuse(RefusalPolicy, checkCapabilities(spec.CapAdd, allowed))
	refuse(RefusalPolicy, checkLabels(spec.Labels, in.srv.cfg.AllowLabels, in.srv.cfg.DenyLabels))
	refuse(RefusalVersion, docker.CheckConfig(spec.DockerConfig, in.srv.hello.DockerAPI))
	refuse(RefusalPolicy, docker.CheckHostConfig(spec.DockerHostConfig))
	refuse(RefusalPolicy, checkDevices(in.pre.Devices, spec))
	refuse(RefusalUnsupported, checkCgroups(in.sess.Peer().Host, in.srv.hello.Host))
	if ok, err := dk.HasRuntime(ctx, restoreruntime.Name); err != nil {
		refuse(RefusalOther, fmt.Errorf("asking the destination's Docker for its runtimes: %w", err))
	} else if !ok {
		refuse(RefusalUnsupported, fmt.Errorf("the restore runtime %q is not installed on the destination (run there: migrate-dst install-runtime)", restoreruntime.Name))
	}
	refuse(RefusalNetwork, in.checkNetworks(ctx, spec.Networks))
	refuse(RefusalNetwork, in.checkPorts(ctx))
	in.bindPaths = make([]string, len(spec.Binds))
	for i, b := range spec.Binds {
		var err error
		in.bindPaths[i], err = checkBind(in.srv.cfg.BindBases, b)
		refuse(RefusalPolicy, err)
	}
	for _, v := range spec.Volumes {
		if v.Anonymous {
			continue // a new one, made with the container
		}
		if _, err := dk.Volume(ctx, v.Name); err == nil {
			refuse(RefusalConflict, fmt.Errorf("volume %q already exists on the destination; refusing to mix its contents", v.Name))
		}
	}
	refuse(RefusalOther, in.checkStorage(ctx))
	in.image, err = in.localImage(ctx)
	if errors.Is(err, docker.ErrNotFound) {
		needImage, err = true, nil
	}
	if err != nil {
		return false, err
	}
	refuse(RefusalDisk, in.checkDisk(ctx, needImage))
	if len(why) > 0 {
		return false, joinRefusals(why)
	}
	return needImage, nil
}

// haveLayers counts the leading layers of the image that a local image
// already has: the source leaves them out.
func (in *incoming) haveLayers(ctx context.Context) int {
	if in.containerdStore {
		// Its `docker load` wants every layer in the archive ("failed to
		// resolve layers"), even those it has.
		return 0
	}
	local, err := in.srv.dk.AllImageLayers(ctx)
	if err != nil {
		in.log.Warn("listing local layers; the whole image will be sent", "err", err)
		return 0
	}
	return commonLayers(in.pre.ImageLayers, local)
}

// checkDisk refuses a migration this host has no room for.
func (in *incoming) checkDisk(ctx context.Context, needImage bool) error {
	root, err := in.srv.dk.RootDir(ctx)
	if err != nil {
		return err
	}
	z := in.pre.Sizes
	needs := []diskNeed{
		{in.srv.cfg.RuntimeState, satAdd(z.Memory, z.Logs)},
		{root, satAdd(satAdd(z.Rootfs, z.Volumes), z.Logs)},
	}
	for _, b := range in.pre.Container.Binds {
		if _, base, err := bindPath(in.srv.cfg.BindBases, b); b.Mode == protocol.BindCopy && err == nil {
			needs = append(needs, diskNeed{base, z.Binds}) // all copies, counted once
			break
		}
	}
	if needImage {
		// The image arrives as a tar in staging, then Docker unpacks it.
		needs = append(needs, diskNeed{in.srv.stagingDir(), z.Image}, diskNeed{root, z.Image})
	}
	return checkDisk(needs, statfsInfo)
}

func (in *incoming) receiveImage(ctx context.Context) error {
	dir, err := os.MkdirTemp(in.srv.stagingDir(), "image-")
	if err != nil {
		return err
	}
	in.state.Staging = dir
	in.srv.saveState(&in.state)
	if err := in.receiveBounded(ctx, protocol.StreamImage, dir, imagePolicy(), in.pre.Sizes.Image); err != nil {
		return err
	}
	untagged := filepath.Join(dir, "untagged.tar")
	if err := untagArchive(filepath.Join(dir, "image.tar"), untagged, in.pre.Container.ImageID); err != nil {
		return fmt.Errorf("image stream: %w", err)
	}
	f, err := os.Open(untagged)
	if err != nil {
		return err
	}
	defer f.Close()
	loaded, err := in.srv.dk.LoadImage(ctx, f)
	if err != nil {
		return err
	}
	if len(loaded) > 0 {
		// Recorded before it is checked: a rollback removes what the load
		// made even if it is not the container's image.
		in.state.ImageLoaded = loaded[0]
		if err := in.srv.saveState(&in.state); err != nil {
			return err
		}
	}
	id, err := in.localImage(ctx, loaded...)
	if err != nil {
		return fmt.Errorf("the image sent (loaded as %v) is not the container's image %s: %w", loaded, in.pre.Container.ImageID, err)
	}
	in.image = id
	in.state.ImageLoaded = id
	if err := in.srv.saveState(&in.state); err != nil {
		return err
	}
	// The user's reference names the image here too, unless this host
	// already uses that name for another image.
	if ref := in.pre.Container.Image; ref != "" && ref != in.pre.Container.ImageID {
		if tagged, err := in.srv.dk.TagIfFree(ctx, id, ref); err != nil {
			in.log.Warn("tag the image", "ref", ref, "err", err)
		} else if !tagged {
			in.log.Info("image name in use here; the container refers to the image by ID", "ref", ref)
		}
	}
	return nil
}

// checkStorage learns which image store Docker keeps here.
func (in *incoming) checkStorage(ctx context.Context) error {
	_, driver, err := in.srv.dk.Storage(ctx)
	in.containerdStore = driver == driverSnapshotter
	return err
}

// stageRootfs makes the directory the writable layer waits in: under
// Docker's data root, recorded so that every cleanup removes it.
func (in *incoming) stageRootfs(ctx context.Context) (string, error) {
	root, err := in.srv.dk.RootDir(ctx)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, rootfsStagingDir, in.pre.MigrationID)
	in.state.RootfsStaging = dir
	if err := in.srv.saveState(&in.state); err != nil {
		return "", err
	}
	return dir, os.MkdirAll(dir, 0o700)
}

// rootfsStagingDir is dockmove's directory in Docker's data root.
const rootfsStagingDir = "dockmove-staging"

// localImage finds the container's image in this host's store: by the
// source's image ID, by the user's reference, or by what a load named
// (more), as long as it has the container's layers. Docker names the same
// image differently in its two image stores, so the source's ID alone does
// not find it on a host whose store differs.
func (in *incoming) localImage(ctx context.Context, more ...string) (string, error) {
	spec := in.pre.Container
	refs := append([]string{spec.ImageID, spec.Image}, more...)
	return in.srv.dk.FindImage(ctx, refs, in.pre.ImageLayers)
}

// createShell creates the container (not started) with the restore runtime.
func (in *incoming) createShell(ctx context.Context) error {
	spec := in.pre.Container
	for _, v := range spec.Volumes {
		if v.Anonymous {
			continue // Docker makes it with the container, unnamed
		}
		// Made here, labelled, so that a volume of that name created by
		// someone else since the preflight is refused, not filled (and
		// removed on rollback).
		labels := map[string]string{LabelMigration: in.pre.MigrationID}
		if _, err := in.srv.dk.CreateVolume(ctx, v.Name, labels); err != nil {
			if errors.Is(err, docker.ErrVolumeTaken) {
				err = fmt.Errorf("volume %q appeared on the destination after the preflight; refusing to adopt it: %w", v.Name, err)
			}
			in.srv.saveState(&in.state)
			return err
		}
		in.state.Volumes = append(in.state.Volumes, v.Name)
	}
	spec.Binds = slices.Clone(spec.Binds)
	for i, b := range spec.Binds {
		spec.Binds[i].Source = in.bindPaths[i]
		if b.Mode != protocol.BindCopy {
			continue
		}
		made, err := makeBindDir(in.srv.cfg.BindBases, b)
		if made != "" {
			in.state.BindDirs = append(in.state.BindDirs, made)
		}
		if err != nil {
			in.srv.saveState(&in.state)
			return fmt.Errorf("bind mount %s: %w", b.Destination, err)
		}
	}
	spec.Networks = slices.Clone(spec.Networks)
	for i, n := range spec.Networks {
		if in.renumber[n.Name] {
			spec.Networks[i].IPv4, spec.Networks[i].IPv6, spec.Networks[i].MAC = "", "", ""
		}
	}
	for _, n := range in.createNets {
		if err := in.srv.dk.CreateNetwork(ctx, n.name, n.def, map[string]string{LabelMigration: in.pre.MigrationID}); err != nil {
			in.srv.saveState(&in.state)
			return err
		}
		in.state.Networks = append(in.state.Networks, n.name)
		in.log.Info("network created for the container", "network", n.name, "driver", n.def.Driver, "subnet", n.def.Subnet, "range", n.def.IPRange)
	}
	spec.ImageID = in.image
	in.state.Restart, in.state.RestartMax = spec.RestartPolicy, spec.RestartMax
	spec.RestartPolicy, spec.RestartMax = "no", 0
	id, err := in.srv.dk.Create(ctx, spec, restoreruntime.Name, map[string]string{LabelMigration: in.pre.MigrationID})
	if id != "" {
		in.state.ContainerID = id
	}
	if err == nil {
		err = in.nameVolumes(ctx)
	}
	if serr := in.srv.saveState(&in.state); err == nil {
		err = serr
	}
	if err == nil {
		err = in.takeReservations(ctx)
	}
	return err
}

// takeReservations removes the reservations this host keeps for the
// container's addresses (it is coming home: package reserve), each recorded
// first so that a rollback makes it again.
func (in *incoming) takeReservations(ctx context.Context) error {
	for _, n := range in.pre.Container.Networks {
		if in.renumber[n.Name] || n.IPv4 == "" {
			continue
		}
		r, ok, err := in.srv.dk.FindReservation(ctx, n.Name, n.IPv4)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		in.state.Reservations = append(in.state.Reservations, r)
		if err := in.srv.saveState(&in.state); err != nil {
			return err
		}
		if err := in.srv.dk.Remove(ctx, r.ID); err != nil {
			return fmt.Errorf("make way for the container's address %s on %s, which this host kept reserved: %w", n.IPv4, n.Name, err)
		}
		in.log.Info("the container's address comes home: its reservation made way", "network", n.Name, "address", n.IPv4)
	}
	return nil
}

// nameVolumes finds, once the container exists, the volume each of the
// source's volumes lands in here: a named one by its name, an anonymous
// one by the name Docker gave the volume it made (recorded with the
// migration's volumes, removed on rollback).
func (in *incoming) nameVolumes(ctx context.Context) error {
	vols := in.pre.Container.Volumes
	in.volumes = make([]string, len(vols))
	var mounts map[string]string
	for i, v := range vols {
		if !v.Anonymous {
			in.volumes[i] = v.Name
			continue
		}
		if mounts == nil {
			var err error
			if mounts, err = in.srv.dk.VolumeMounts(ctx, in.state.ContainerID); err != nil {
				return err
			}
		}
		name, ok := mounts[v.Destination]
		if !ok {
			return fmt.Errorf("docker made no volume at %s for the container's anonymous volume", v.Destination)
		}
		in.volumes[i] = name
		in.state.Volumes = append(in.state.Volumes, name)
	}
	return nil
}

// receive stores the CRIU images, the writable layer and the volumes.
func (in *containerArrival) receive(ctx context.Context) (err error) {
	dk := in.srv.dk
	r, err := dk.Inspect(ctx, in.state.ContainerID)
	if err != nil {
		return err
	}
	dir, err := restoreruntime.ContainerDir(in.srv.cfg.RuntimeState, in.state.ContainerID)
	if err != nil {
		return err
	}
	// Docker's data root, where the log files go, asked now: Docker's
	// info call takes milliseconds, and the end of the receive is inside
	// the freeze.
	var dockerRoot string
	if in.pre.Logs != "" {
		if dockerRoot, err = dk.RootDir(ctx); err != nil {
			return err
		}
	}
	upper := r.GraphDriver.Data["UpperDir"]
	if in.containerdStore {
		if upper, err = in.stageRootfs(ctx); err != nil {
			return err
		}
	} else if upper == "" {
		return fmt.Errorf("the new container has no overlay upper directory (driver %s)", r.GraphDriver.Name)
	}
	// A page stream over its bound fails the migration at once: the
	// source's CRIU, blocked on it with the container frozen, is let go.
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	var pages *pageReceiver
	if in.pre.RemotePages {
		pages = in.receivePages(ctx, filepath.Join(dir, pagesDirName), fail)
		defer pages.stop()
		defer func() {
			if err == nil {
				err = pages.place(filepath.Join(dir, restoreruntime.ImagesDir))
			}
		}()
	}
	g, gctx := errgroup.WithContext(ctx)
	recv := func(name, target string, p transfer.Policy, estimate int64) {
		g.Go(func() error { return in.receiveBounded(gctx, name, target, p, estimate) })
	}
	z := in.pre.Sizes
	recv(protocol.StreamImages, filepath.Join(dir, restoreruntime.ImagesDir), imagePolicy(), z.Memory)
	recv(protocol.StreamRootfs, upper, in.withDevices(rootfsPolicy(), protocol.StreamRootfs), z.Rootfs)
	// The source estimates all volumes at once, and all copied bind
	// mounts: each kind shares one allowance, not one each.
	volumes, binds := transfer.NewBudget(allowance(z.Volumes)), transfer.NewBudget(allowance(z.Binds))
	for i, name := range in.volumes {
		mp, err := dk.Volume(ctx, name)
		if err != nil {
			return err
		}
		p := in.withDevices(rootfsPolicy(), protocol.VolumeStream(i))
		p.Budget = volumes
		recv(protocol.VolumeStream(i), mp, p, z.Volumes)
	}
	for i, b := range in.pre.Container.Binds {
		if b.Mode == protocol.BindCopy {
			p := in.withDevices(rootfsPolicy(), protocol.BindStream(i))
			p.Budget = binds
			recv(protocol.BindStream(i), in.bindPaths[i], p, z.Binds)
		}
	}
	if in.pre.Logs != "" {
		g.Go(func() error { return in.receiveLogs(gctx, dir, true) })
	}
	if err := g.Wait(); err != nil {
		if perr := pages.failure(); perr != nil {
			return perr
		}
		return err
	}
	if in.pre.Logs != "" {
		if err := in.installLogs(dir, dockerRoot); err != nil {
			return err
		}
	}
	return linkParent(filepath.Join(dir, restoreruntime.ImagesDir), in.rounds)
}

// newAddress: the container gets a new address on one of its networks
// here, and its TCP connections close.
func (in *incoming) newAddress() bool { return len(in.renumber) > 0 }

// checkStrategy refuses a strategy this host's kernel cannot serve.
func (in *incoming) checkStrategy() error {
	if in.pre.Strategy.PostCopy() && !in.srv.hello.CRIU.LazyPages {
		return fmt.Errorf("%s migration needs userfaultfd, which the destination lacks (criu check --feature uffd-noncoop)", in.pre.Strategy)
	}
	return nil
}

// checkCgroups refuses a move between cgroup versions: CRIU puts a
// container's cgroup settings back in the hierarchy it dumped them from,
// and a v1 <-> v2 restore has not been shown to keep them.
func checkCgroups(src, dst transfer.HostInfo) error {
	if src.Cgroup == 0 || dst.Cgroup == 0 || src.Cgroup == dst.Cgroup {
		return nil
	}
	return fmt.Errorf("the source runs cgroup v%d (%s) and the destination cgroup v%d (%s): moving a container between cgroup versions is not supported; choose a destination with cgroup v%d",
		src.Cgroup, src, dst.Cgroup, dst, src.Cgroup)
}

// expectFromSource waits for the source's next message, which must be a T,
// while the source is silent for at most the session's PeerWaitTimeout: a
// source that stays connected but sends nothing must not hold the
// container's name, and what was staged for it, forever (one whose dump
// sends its pages here meanwhile is at work).
func expectFromSource[T transfer.Message](ctx context.Context, in *incoming) (T, error) {
	d := in.srv.cfg.Transfer.PeerWaitTimeout
	var zero T
	wctx, cancel := in.sess.PeerWait(ctx, d, fmt.Errorf("%w: the source sent no %s within %v", transfer.ErrIdle, zero.Type(), d))
	defer cancel()
	m, err := transfer.Expect[T](wctx, in.sess)
	if err != nil && wctx.Err() != nil && ctx.Err() == nil {
		err = context.Cause(wctx)
	}
	return m, err
}

// receiveRounds stores the pre-copy rounds under dir, one directory each,
// linking each to the one before as CRIU expects. The rounds' number and
// order are checked; their "parent" links are made here, never taken
// from the wire.
func (in *incoming) receiveRounds(ctx context.Context, dir string) error {
	for done := false; !done; {
		name := fmt.Sprintf("pre-copy round %d", in.rounds+1)
		err := in.phase(ctx, name, allowance(in.pre.Sizes.Memory), func(ctx context.Context) (err error) {
			done, err = in.receiveRound(ctx, dir)
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// receiveRound stores the next pre-copy round, or reports that the
// rounds are over.
func (in *incoming) receiveRound(ctx context.Context, dir string) (done bool, err error) {
	m, err := expectFromSource[*protocol.PreRound](ctx, in)
	if err != nil {
		return false, err
	}
	if m.Done {
		if m.Index != in.rounds {
			return false, fmt.Errorf("%w: the source reports %d pre-copy rounds, %d arrived", transfer.ErrBadMessage, m.Index, in.rounds)
		}
		return true, nil
	}
	if m.Index != in.rounds+1 {
		return false, fmt.Errorf("%w: pre-copy round %d after round %d", transfer.ErrBadMessage, m.Index, in.rounds)
	}
	target := predump.RoundDir(dir, m.Index)
	if err := in.receiveBounded(ctx, protocol.RoundStream(m.Index), target, imagePolicy(), in.pre.Sizes.Memory); err != nil {
		return false, err
	}
	in.rounds = m.Index
	if err := linkParent(target, m.Index-1); err != nil {
		return false, err
	}
	in.log.Info("pre-copy round stored", "round", m.Index)
	return false, nil
}

// linkParent points the image directory dir, a sibling of the rounds, at
// round prev (nothing when prev is 0: no round before it).
func linkParent(dir string, prev int) error {
	if prev < 1 {
		return nil
	}
	return os.Symlink(predump.Parent(prev), filepath.Join(dir, "parent"))
}

// restore starts the container through the restore runtime and confirms
// it runs.
func (in *containerArrival) restore(ctx context.Context) error {
	id := in.state.ContainerID
	dir, _ := restoreruntime.ContainerDir(in.srv.cfg.RuntimeState, id)
	lazy := in.pre.Strategy.PostCopy()
	opts := append([]string{"mntns-compat-mode"}, in.srv.cfg.RestoreCRIUOptions...)
	if in.newAddress() {
		// Connections cannot follow to a new address: restore them closed,
		// so the application sees them fail instead of hanging.
		opts = append(opts, "tcp-close")
	}
	plan := restoreruntime.Plan{TCPEstablished: true, ExtUnixSk: true, FileLocks: true, LazyPages: lazy, CRIUOptions: opts, Netns: true, RootfsDir: in.state.RootfsStaging,
		Init: in.pre.Container.InitBinary != nil}
	for _, n := range in.pre.Container.Networks {
		for _, a := range []string{n.IPv4, n.IPv6} {
			if !in.renumber[n.Name] && a != "" {
				plan.Addresses = append(plan.Addresses, a)
			}
		}
	}
	if err := restoreruntime.WritePlan(dir, plan); err != nil {
		return err
	}
	if lazy {
		d, err := lazypages.Start(ctx, in.sess, in.srv.cfg.CRIU, filepath.Join(dir, restoreruntime.ImagesDir), filepath.Join(dir, restoreruntime.WorkDir), in.log)
		if err != nil {
			return err
		}
		in.pages = d
		in.state.Lazy = true
	}
	in.steps.mark("prepare")
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, in.srv.cfg.RestoreTimeout)
	stopWatch := func() {}
	if in.pages != nil {
		stopWatch = in.killRestoreIfPagerDies(filepath.Join(dir, restoreruntime.WorkDir))
	}
	in.sentinel.update(func(p *sentinelPlan) { p.Armed = true })
	err := in.srv.dk.Start(sctx, id)
	stopWatch()
	cancel()
	took := time.Since(start)
	if err != nil && in.pages != nil && chanClosed(in.pages.Done()) && in.pages.ExitErr() != nil {
		err = fmt.Errorf("the lazy-pages daemon died during the restore (%w: %w): %w", lazypages.ErrIncomplete, in.pages.ExitErr(), err)
	}
	if err != nil {
		if res, rerr := restoreruntime.ReadResult(dir); rerr == nil && !res.OK && !res.Runc && res.Error != "" {
			return fmt.Errorf("the restore runtime could not prepare the restore: %s", res.Error)
		}
		ce := criu.NewError("restore", filepath.Join(dir, restoreruntime.WorkDir, criu.RestoreLog), err)
		// Kept: the rollback removes the restore's directory.
		if kerr := ce.Keep(filepath.Join(in.srv.cfg.WorkDir, "failed-logs")); kerr != nil {
			in.log.Warn("keeping CRIU's restore log", "err", kerr)
		}
		return ce
	}
	in.srv.lastRestore.Store(took.Milliseconds())
	res, rerr := restoreruntime.ReadResult(dir)
	if rerr != nil || !res.OK {
		return fmt.Errorf("restore runtime did not report success (%+v, %v)", res, rerr)
	}
	// docker start: containerd and the shim reach the runtime, which
	// prepares the bundle and runs runc restore (CRIU); then Docker
	// finishes (on Docker 26 and later it wires the network here).
	in.steps.markAt("docker-to-runtime", res.Began)
	in.steps.markAt("runtime-prepare", res.RuncStarted)
	in.steps.markAt("runc-restore", res.RuncEnded)
	in.steps.mark("docker-after-runtime")
	r, err := in.srv.dk.Inspect(ctx, id)
	if err != nil {
		return err
	}
	if r.State == nil || !r.State.Running {
		return fmt.Errorf("restored container is not running: %s", docker.ExitInfo(r))
	}
	addrs := map[string]string{}
	for name, ep := range r.NetworkSettings.Networks {
		if ep != nil {
			addrs[name] = ep.IPAddress
		}
	}
	in.restored = r.State.Pid
	in.sentinel.update(func(p *sentinelPlan) { p.Pid, p.PidStart = r.State.Pid, startTime(r.State.Pid) })
	if err := verifyInterfaces(r.State.Pid, in.pre.Container.Networks, addrs, in.renumber); err != nil {
		return err
	}
	in.steps.mark("verify")
	in.announce(r.State.Pid)
	in.steps.mark("announce")
	if err := in.recordRestored(); err != nil {
		return err
	}
	in.requirePages(r.State.Pid, startTime(r.State.Pid))
	msg := &protocol.Restored{ContainerID: id, RestoreMillis: took.Milliseconds()}
	if nets := in.pre.Container.Networks; len(nets) > 0 {
		msg.IPv4 = addrs[nets[0].Name]
	}
	// CRIU writes its statistics in its work directory.
	if st, ok := criu.RestoreStatsOf(filepath.Join(dir, restoreruntime.WorkDir)); ok {
		msg.PagesRestored, msg.ForkingMicros, msg.RestoreMicros = st.PagesRestored, st.ForkingMicros, st.RestoreMicros
	}
	in.steps.mark("record")
	msg.Steps = in.steps.steps
	return in.sess.Send(ctx, msg)
}

// requirePages makes the restored process pid (started at start) running
// still the condition of a post-copy's end (lazypages.Daemon.Require).
func (in *incoming) requirePages(pid int, start uint64) {
	if in.pages != nil {
		in.pages.Require(runsStill(pid, start))
	}
}

// recordRestored records that the copy runs, before the source is told.
// A record that cannot be written (a full disk) fails the migration as a
// failed restore does: the source, never told, resumes its original, so
// the copy must go, not wait in doubt.
func (in *incoming) recordRestored() error {
	in.state.Phase = phaseRestored
	if err := in.srv.saveState(&in.state); err != nil {
		in.state.Phase = phasePrepared
		return fmt.Errorf("record the restored copy: %w", err)
	}
	return nil
}

// commit waits for the source to confirm the original is gone, then
// finalises: the images are deleted so the runtime never restores again.
// In post-copy the lazy-pages daemon finishing is the real commit (the
// source's CRIU kills the original once every page is served): if it
// fails first, the copy cannot continue and is removed.
func (in *incoming) commit(ctx context.Context) error {
	if err := in.phase(ctx, "commit", in.commitCarries(), in.awaitCommit); err != nil {
		return err
	}
	// Committed: should this process die from here on, the restarted one
	// keeps the copy (or holds it in doubt); the sentinel must not stop it.
	in.sentinel.done()
	in.finish(ctx)
	if in.announced > 0 {
		go in.reannounce(in.announced)
	}
	// Committed: whatever happens to the acknowledgement, the copy here is
	// the container now. The source closes the connection as soon as it
	// reads it, which can fail this send although it was delivered; it
	// must never make this host undo (pause or stop) a committed copy.
	if err := in.sess.Send(ctx, in.done()); err != nil {
		in.log.Warn("committed; the acknowledgement may not have reached the source", "container", in.name(), "err", err)
		return nil
	}
	// Let the source end the session once it has read the acknowledgement:
	// closing it from here at once could end it while the source's own
	// write of the commit still waited for its completion, failing that
	// write ("session shutdown") although the commit had arrived, and the
	// source would report a committed migration as failed (seen in the
	// soak test, once in five runs).
	select {
	case <-in.sess.Done():
	case <-time.After(ackLinger):
	case <-ctx.Done():
	}
	return nil
}

// done is the acknowledgement of the commit, with what the lazy-pages
// daemon did after a post-copy.
func (in *incoming) done() *protocol.Done {
	var done protocol.Done
	if in.pages == nil {
		return &done
	}
	if st, ok := in.pages.Summary(); ok {
		done.PostCopy = &st
		in.log.Info("post-copy", "container", in.name(), "faults", st.Faults, "faults_queued", st.Queued, "faults_zero", st.Zero,
			"fault_pages", st.FaultPages, "background_pages", st.BackgroundPages)
	}
	return &done
}

// awaitCommit waits for the source's commit (in post-copy, with every
// page: awaitPages).
func (in *incoming) awaitCommit(ctx context.Context) error {
	if in.pages != nil {
		return in.awaitPages(ctx)
	}
	_, err := transfer.Expect[*protocol.Commit](ctx, in.sess)
	return err
}

// ackLinger bounds how long the destination waits, after acknowledging a
// commit, for the source to end the session.
const ackLinger = 10 * time.Second

// awaitPages waits for both the daemon and the source's commit.
func (in *incoming) awaitPages(ctx context.Context) error {
	committed := make(chan error, 1)
	go func() {
		_, err := transfer.Expect[*protocol.Commit](ctx, in.sess)
		committed <- err
	}()
	select {
	case <-in.pages.Done():
		if err := in.pages.Err(); err != nil {
			return err
		}
		in.paged = time.Now()
		in.log.Info("post-copy complete: every page arrived", "container", in.name())
		in.complete()
		return <-committed
	case err := <-committed:
		if err != nil {
			return err
		}
		select {
		case <-in.pages.Done():
			in.paged = time.Now()
			if err := in.pages.Err(); err != nil {
				return err
			}
			in.complete()
			return nil
		case <-time.After(30 * time.Second):
			return fmt.Errorf("%w: the source committed but the lazy-pages daemon is still running", lazypages.ErrIncomplete)
		}
	}
}

// complete records that every page arrived (the lazy-pages daemon said so,
// and its CLOSE went to the source, whose CRIU ends the original on it):
// the copy is the container now, and the sentinel must not stop it.
// (The daemon also says CLOSE after failing, when the source is gone: only
// its clean end, which comes a moment after, says every page arrived.)
func (in *incoming) complete() {
	in.state.Phase = phaseComplete
	if err := in.srv.saveState(&in.state); err != nil {
		in.log.Warn("record that every page arrived", "err", err)
	}
	in.sentinel.done()
}

// finish removes what the committed migration no longer needs.
func (in *incoming) finish(ctx context.Context) {
	if in.state.ProcessDir != "" {
		os.RemoveAll(in.state.ProcessDir)
		in.srv.dropState(&in.state)
		return
	}
	in.srv.finalise(ctx, &in.state, in.log)
}

// announce tells the network the container's address now lives here: the
// first gratuitous ARP at once, two more in the background in case the
// first is lost.
func (in *incoming) announce(pid int) {
	if _, err := netrewire.Announce(pid, 1, 0); err != nil {
		in.log.Warn("announce address", "err", err)
		return
	}
	in.announced = pid
	go netrewire.Announce(pid, 2, 100*time.Millisecond)
}

// reannounce repeats the announcement over the seconds after the commit.
// Until the source removes its stopped original, that container's
// interface still answers ARP with the same address and MAC, pulling the
// switch's entry back to the source (measured: with Docker 28 on the source,
// whose network namespace outlives the dumped processes, a post-copy move
// left clients unable to reach the container for ~35 s). Once the source
// has removed it, one of these puts the entry right.
func (in *incoming) reannounce(pid int) {
	for _, d := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second} {
		time.Sleep(d)
		if _, err := netrewire.Announce(pid, 1, 0); err != nil {
			return // the container is gone or has no address any more
		}
	}
}
