//go:build linux

package migrate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dockmove/dockmove/internal/criu"
	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/lazypages"
	"github.com/dockmove/dockmove/predump"
	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

// SourceConfig configures one migration from this host.
type SourceConfig struct {
	// To is the destination agent, host:port. Required.
	To string
	// Container is the name or ID of the container to move. Required
	// unless Pid is set.
	Container string
	// Pid, instead of a container, moves the plain process tree rooted at
	// this process (best the init of its own PID namespace, so the
	// destination can give it the same PIDs).
	Pid int
	// Docker is the local dockerd's address. Default "" (DOCKER_HOST or the
	// default socket).
	Docker string
	// Strategy is stop-and-copy, lazy (post-copy), precopy (pre-dump
	// rounds), hybrid (pre-dump rounds, then post-copy) or auto (the best
	// the hosts' kernels allow). Default auto.
	Strategy protocol.Strategy
	// PrecopyPolicy decides when pre-dump rounds stop (predump.Policies).
	// Default adaptive.
	PrecopyPolicy predump.Policy
	// PrecopyLimits bound the rounds.
	PrecopyLimits predump.Limits
	// KeepSource leaves the stopped original container on this host instead
	// of removing it after a successful migration. Default false.
	KeepSource bool
	// LocalPages has a stop-and-copy dump write the container's memory
	// here and ship it afterwards, as before remote pages. Default false:
	// the pages go to the destination's page server as CRIU dumps them
	// (where the destination offers it), which takes the shipping of the
	// memory out of the freeze.
	LocalPages bool
	// DryRun only checks: everything up to the destination's answer to
	// the preflight, with nothing frozen, locked or made on either host
	// (migrate-src check). The report's Check holds what was found.
	DryRun bool
	// AllowNewAddress accepts that the container gets a new address on the
	// destination when it cannot keep its own; its TCP connections are then
	// closed. Default false: such a migration is refused before freezing.
	AllowNewAddress bool
	// CreateNetworks asks the destination to create, from this host's
	// definitions, the container's networks it lacks (where its policy
	// allows: migrate-dst --allow-create-networks).
	CreateNetworks bool
	// RemapPorts publishes the container's host ports elsewhere on the
	// destination: "[IP:]PORT" -> "[IP:]OTHER". Default none: the same
	// ports, which must be free there.
	RemapPorts map[string]string
	// BindMounts is how the container's bind mounts of host paths move:
	// copy (their contents, to the same paths on the destination) or
	// shared (the destination sees the same paths on shared storage).
	// Default "": a container with bind mounts is refused.
	BindMounts protocol.BindMode
	// DumpTimeout bounds CRIU's dump from the freeze to the images being
	// complete; past it CRIU is killed, the container thawed and resumed,
	// and the migration fails. Default 5m.
	DumpTimeout time.Duration
	// GhostLimit is the largest file a process keeps open after deleting
	// it (a rotated log, an unlinked temporary file) that moves with it:
	// CRIU copies such files into the images. A larger one is refused
	// before freezing, named. Default 64 MiB; at most 4 GiB - 1.
	GhostLimit int64
	// WorkDir holds the dump while it is shipped. Default /var/lib/dockmove/source.
	WorkDir string
	// CRIU is the criu binary. Default "" (criu in PATH).
	CRIU string
	// GuardBinary is migrate-src's own binary, started with --guard as the
	// migration's guard: if this process dies mid-migration, the guard
	// waits for CRIU to resume (or end) the container and undoes what
	// was half done here (source_guard.go). Default "": no guard, and a killed
	// caller leaves CRIU's network lock and the changed restart policy to
	// a person.
	GuardBinary string
	// GuardArgs are more arguments for the guard: the TLS flags it needs
	// to tell the destination a migration's outcome.
	GuardArgs []string
	// ResolveFor bounds how long migrate-src itself tries to deliver a
	// commit whose acknowledgement was lost with the link, in new
	// sessions, before it leaves that to its guard. Default 2m.
	ResolveFor time.Duration
	// Transfer configures the session (TLS, compression).
	Transfer transfer.Config
	// Logger receives progress events. Nil discards them.
	Logger *slog.Logger
	// OnStage, when set, is called as the migration enters each stage.
	OnStage func(Stage)
	// PauseAt and PauseFor inject a delay for fault-injection tests: on
	// entering stage PauseAt (after OnStage), the migration waits PauseFor,
	// so a test can act (kill an agent, cut the link) exactly there.
	// Default "": never.
	PauseAt  string
	PauseFor time.Duration
}

// DefaultSourceConfig returns the documented defaults.
func DefaultSourceConfig() SourceConfig {
	return SourceConfig{Strategy: protocol.StrategyAuto, PrecopyPolicy: predump.Adaptive, PrecopyLimits: predump.DefaultLimits(),
		WorkDir: "/var/lib/dockmove/source", ResolveFor: 2 * time.Minute, DumpTimeout: 5 * time.Minute, GhostLimit: 64 << 20,
		Transfer: transfer.DefaultConfig()}
}

// Validate reports a configuration that cannot work.
func (c SourceConfig) Validate() error {
	switch {
	case c.To == "":
		return errors.New("migrate: no destination")
	case c.Container == "" && c.Pid == 0:
		return errors.New("migrate: no container or process")
	case c.Container != "" && c.Pid != 0:
		return errors.New("migrate: a container or a process, not both")
	case c.Pid < 0 || c.Pid == 1:
		return fmt.Errorf("migrate: cannot move process %d", c.Pid)
	case c.BindMounts != "" && c.BindMounts != protocol.BindCopy && c.BindMounts != protocol.BindShared:
		return fmt.Errorf("migrate: unknown bind mount mode %q (want copy or shared)", c.BindMounts)
	case c.Strategy != protocol.StrategyAuto && !slices.Contains(protocol.Strategies, c.Strategy):
		_, err := protocol.ParseStrategy(string(c.Strategy))
		return fmt.Errorf("migrate: %w", err)
	case !slices.Contains(predump.Policies, c.PrecopyPolicy):
		_, err := predump.ParsePolicy(string(c.PrecopyPolicy))
		return fmt.Errorf("migrate: %w", err)
	case c.WorkDir == "":
		return errors.New("migrate: no work directory")
	case c.DumpTimeout <= 0:
		return errors.New("migrate: the dump timeout must be positive")
	case c.GhostLimit < 0 || c.GhostLimit > math.MaxUint32:
		return fmt.Errorf("migrate: ghost-file limit %d outside 0 - 4 GiB", c.GhostLimit)
	}
	if err := c.Transfer.ValidateSettings(); err != nil {
		return err
	}
	return c.PrecopyLimits.Validate()
}

// Stage is a step the migration entered.
type Stage struct {
	// Name is a short key: inspect, connect, preflight, dump, transfer,
	// restore, post-copy, commit, "round N", ...
	Name string
	// Detail is a sentence for people: "" or starting with a space.
	Detail      string
	MigrationID string
	Container   string // or "process PID"
}

// CheckResult is what a dry run found: the destination would take the
// container, and this is what the migration would ship.
type CheckResult struct {
	Sizes       protocol.Sizes `json:"sizes"`        // the source's estimates
	NeedImage   bool           `json:"need_image"`   // the destination lacks the image
	ImageLayers int            `json:"image_layers"` // the image's layers
	HaveLayers  int            `json:"have_layers"`  // of which the destination has these
	NewAddress  bool           `json:"new_address"`  // the container would get a new address
	// LastRestore is how long the destination's last restore took (0:
	// none since it started), the floor of any freeze there.
	LastRestore time.Duration `json:"destination_last_restore_ns,omitempty"`
	// Predicted is the freeze expected of each strategy, from this host's
	// past migrations.
	Predicted []FreezePrediction `json:"predicted_freeze"`
	// MemAvailable and DiskFree are what the destination reports free
	// (memory, and disk where its Docker keeps containers; 0: unknown).
	MemAvailable int64 `json:"destination_mem_available,omitempty"`
	DiskFree     int64 `json:"destination_disk_free,omitempty"`
}

// HostPair is what each side of a migration runs.
type HostPair struct {
	Source      HostStack `json:"source"`
	Destination HostStack `json:"destination"`
}

// HostStack is one host's versions: its stack as its agent's hello
// describes it, and its CRIU's version.
type HostStack struct {
	transfer.HostInfo
	CRIU string `json:"criu,omitempty"`
}

func hostStack(h transfer.HostInfo, c transfer.CRIUInfo) HostStack {
	return HostStack{HostInfo: h, CRIU: criuVersion(c)}
}

// criuVersion is a peer's CRIU version as people read it ("" for none).
func criuVersion(c transfer.CRIUInfo) string {
	if c.Version <= 0 {
		return ""
	}
	return criu.Capabilities{Version: c.Version}.VersionString()
}

// String names the host's stack in one line, for people.
func (h HostStack) String() string {
	s := h.HostInfo.String()
	if h.CRIU != "" {
		s += ", CRIU " + h.CRIU
	}
	return s
}

// Report is what a migration did and how long the container was frozen.
type Report struct {
	MigrationID       string                       `json:"migration_id"`
	Container         string                       `json:"container"`
	Destination       string                       `json:"destination"`
	Strategy          protocol.Strategy            `json:"strategy"`
	ContainerID       string                       `json:"destination_container_id"`
	FreezeTime        time.Duration                `json:"freeze_ns"`
	TotalTime         time.Duration                `json:"total_ns"`
	BytesRaw          int64                        `json:"bytes_raw"`
	BytesWire         int64                        `json:"bytes_wire"`
	Streams           map[string]transfer.DirStats `json:"streams"`
	Dump              criu.DumpStats               `json:"criu_dump"`
	RestoreTime       time.Duration                `json:"restore_ns"`
	Restore           criu.RestoreStats            `json:"criu_restore"`
	NewAddress        string                       `json:"new_address,omitempty"`
	ImageSent         bool                         `json:"image_sent"`
	ImageBytesSkipped int64                        `json:"image_bytes_skipped"` // what the destination's own layers saved
	StrategyReason    string                       `json:"strategy_reason"`
	MemoryTime        time.Duration                `json:"memory_complete_ns"`        // lazy: from the restart on the destination to the last page
	PageBytes         int64                        `json:"page_bytes"`                // lazy, and stop-and-copy with remote pages: page data sent through the tunnel
	PageBytesWire     int64                        `json:"page_bytes_wire"`           // what they took on the wire (compressed)
	PostCopy          *protocol.PostCopyStats      `json:"post_copy,omitempty"`       // what the destination's lazy-pages daemon did, if it said
	Pid               int                          `json:"destination_pid,omitempty"` // a process's PID on the destination
	Hosts             HostPair                     `json:"hosts"`
	PrecopyPolicy     predump.Policy               `json:"precopy_policy,omitempty"`
	PrecopyLimits     *predump.Limits              `json:"precopy_limits,omitempty"` // as used: the restore floor may be the destination's measurement
	PreCopy           *predump.Result              `json:"precopy,omitempty"`        // the rounds and the policy's decisions
	Check             *CheckResult                 `json:"check,omitempty"`          // a dry run's findings (SourceConfig.DryRun)
	// Reservations hold, on this host, the addresses the container took
	// from this host's own ranges (see package reserve).
	Reservations []docker.Reservation `json:"reservations,omitempty"`
	// DumpRetries are the causes of dumps that failed for a momentary
	// state of the container and were made again (each froze it briefly).
	DumpRetries []string `json:"dump_retries,omitempty"`
	// Warnings are what went wrong that did not stop the migration (after
	// the commit: the container moved).
	Warnings []string `json:"warnings,omitempty"`
	// Resolved are the migrations that the destination held in doubt and
	// this host told the outcome of on connecting, with its answer.
	Resolved map[string]string        `json:"resolved,omitempty"`
	Stages   map[string]time.Duration `json:"stage_ns"`
	// Freeze is where the freeze went, in order; its steps add up to
	// FreezeTime.
	Freeze []FreezeStep `json:"freeze_breakdown,omitempty"`

	mu        sync.Mutex
	start     time.Time
	started   bool // past the destination's yes: the image, the rounds or the dump began
	pagesSent atomic.Int64
	pagesWire atomic.Int64
}

func (r *Report) stream(name string, s transfer.DirStats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Streams[name] = s
	r.BytesRaw += s.Bytes
	r.BytesWire += s.WireBytes
}

// source is one migration in progress on the source host.
type source struct {
	cfg        SourceConfig
	log        *slog.Logger
	dk         *docker.Client
	sess       *transfer.Session
	tgt        target // what moves: a container or a process tree
	dir        string // the dump's work directory: rounds and the final images
	releaseDir func() // removes dir and unlocks it
	report     *Report
	strategy   protocol.Strategy // resolved: never auto
	committing atomic.Bool
	id         string // the migration's ID
	guard      *guard // nil without a guard binary
	// handOver leaves the guard to finish: migrate-src ends without
	// telling it done.
	handOver bool
	// restoreAsked: the destination was asked to restore (stop-and-copy
	// and pre-copy), so it may hold a copy in doubt if the session breaks.
	restoreAsked bool
	// newAddress: the destination said the container gets a new address
	// (which may be numerically the old one, on another host's bridge).
	newAddress bool
	// renumbered names the networks where it does (PreflightOK).
	renumbered []string
	// remotePages: the final dump sends its pages to the destination's
	// page server (protocol.Preflight.RemotePages).
	remotePages bool
	// memory is the source's estimate of the memory to move, as sent in
	// the preflight.
	memory int64
	// marks and destSteps time the freeze (Report.Freeze).
	marks     freezeMarks
	destSteps []protocol.FreezeStep
	lock      *os.File
	tc        transfer.Config // the session's configuration, for resolving
	// logs ships the container's log files (nil: none ship).
	logs *logShipper
	// abortPages makes a lazy dump's page server fail, so that CRIU
	// resumes the original (set by servePages; nil without post-copy).
	abortPages func(why error)
	// nftLock: this host's CRIU locks the dumped tree's network with
	// nftables (criu.DumpSpec.NFTablesLock).
	nftLock bool
}

// Migrate moves the container to the destination. On any failure before the
// destination confirms its copy runs, the container keeps running here with
// its state, and the destination removes what it made.
func Migrate(ctx context.Context, cfg SourceConfig) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	what := cfg.Container
	if cfg.Pid != 0 {
		what = fmt.Sprintf("process %d", cfg.Pid)
	}
	s := &source{cfg: cfg, log: logger(cfg.Logger), report: &Report{
		Container: what, Destination: cfg.To, Strategy: cfg.Strategy,
		Streams: map[string]transfer.DirStats{}, Stages: map[string]time.Duration{}, start: time.Now(),
	}}
	if cfg.Pid != 0 {
		s.tgt = &processTree{s: s, pid: cfg.Pid}
	} else {
		s.tgt = &dockerContainer{s: s}
	}
	defer s.close()
	s.id = randomHex(16)
	s.report.MigrationID = s.id
	sweepStale(cfg.WorkDir, s.log)
	err := s.run(ctx)
	s.report.TotalTime = time.Since(s.report.start)
	if err != nil {
		return s.report, err
	}
	if !cfg.DryRun && s.report.FreezeTime > 0 {
		if err := recordHistory(cfg.WorkDir, newHistoryRecord(s.report, s.memory)); err != nil {
			s.log.Warn("keep the freeze in this host's history (for check's predictions)", "err", err)
		}
	}
	return s.report, nil
}

func logger(l *slog.Logger) *slog.Logger {
	if l != nil {
		return l
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (s *source) stage(name string) { s.stageDetail(name, "") }

// stageDetail records stage name in the report and shows it followed by
// detail (the strategy's reason, a round's figures) to the user.
func (s *source) stageDetail(name, detail string) {
	s.report.mu.Lock() // (the page stream enters a stage from its own goroutine)
	s.report.Stages[name] = time.Since(s.report.start)
	s.report.mu.Unlock()
	s.log.Info("stage", "stage", name, "detail", detail)
	if s.cfg.OnStage != nil {
		s.cfg.OnStage(Stage{Name: name, Detail: detail, MigrationID: s.id, Container: s.report.Container})
	}
	if name == s.cfg.PauseAt {
		s.log.Warn("pausing for a fault-injection test", "stage", name, "for", s.cfg.PauseFor)
		time.Sleep(s.cfg.PauseFor)
	}
}

func (s *source) close() {
	if !s.handOver {
		s.guard.done()
	}
	if s.lock != nil {
		s.lock.Close()
	}
	if s.sess != nil {
		s.sess.Close()
	}
	if s.dk != nil {
		s.dk.Close()
	}
	if s.releaseDir != nil {
		s.releaseDir()
	}
}

func (s *source) run(ctx context.Context) error {
	s.stage("inspect")
	if err := s.tgt.inspect(ctx); err != nil {
		return err
	}
	if !s.cfg.DryRun {
		if err := s.lockTree(ctx); err != nil {
			return err
		}
	}
	var treeErr error
	if s.cfg.DryRun {
		root, refusal := s.tgt.liveTree()
		treeErr = s.treeRefusals(root, refusal)
	}
	if err := s.connect(ctx); err != nil {
		return err
	}
	// An interrupt (Ctrl-C, SIGTERM, a caller's deadline) before the commit
	// point fails the session, which rolls back on both hosts exactly as a
	// cut link does; a bare cancellation could leave CRIU's page server
	// taking a closed tunnel for a completed post-copy.
	stopWatch := context.AfterFunc(ctx, func() {
		if !s.committing.Load() {
			s.sess.Fail(fmt.Errorf("migration interrupted on the source: %w", context.Cause(ctx)))
		}
	})
	defer stopWatch()
	err := s.preflight(ctx)
	if s.cfg.DryRun && treeErr != nil {
		if err != nil {
			return fmt.Errorf("%w; and on this host: %v", err, strings.TrimPrefix(treeErr.Error(), ErrCannotMove.Error()+": "))
		}
		return treeErr
	}
	if err != nil || s.cfg.DryRun {
		return err
	}
	return s.checkpoint(ctx)
}

// treeRefusals gives every reason, found before anything is frozen, that
// CRIU could not dump the running tree rooted at pid: tasks stopped or
// traced, deleted files over the ghost limit, sockets CRIU cannot dump,
// and the target's own (refusal), all at once.
func (s *source) treeRefusals(pid int, refusal error) error {
	var why []string
	for _, err := range []error{refusal, checkNotStopped(pid), checkGhosts(pid, s.cfg.GhostLimit), s.checkSockets(pid)} {
		switch {
		case err == nil:
		case !errors.Is(err, ErrCannotMove):
			return err // the tree could not be read
		default:
			why = append(why, strings.TrimPrefix(err.Error(), ErrCannotMove.Error()+": "))
		}
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrCannotMove, strings.Join(why, "; "))
}

// criuReadsProc asks this host's CRIU, when called, whether it reads the
// limits of another user's processes from /proc (checkLimitsReadable).
func (s *source) criuReadsProc(ctx context.Context) func() bool {
	return func() bool { return criu.ReadsLimitsFromProc(ctx, s.cfg.CRIU) }
}

// connect opens the session, announcing this host's CRIU.
func (s *source) connect(ctx context.Context) error {
	s.stage("connect")
	caps, err := criu.Probe(ctx, s.cfg.CRIU)
	if err != nil {
		return err
	}
	s.nftLock = caps.NFTables
	var api string
	if s.dk != nil {
		if api, err = s.dk.APIVersion(ctx); err != nil {
			return err
		}
	}
	tc := s.cfg.Transfer
	tc.Hello = transfer.Hello{
		Role: transfer.RoleSource, Agent: Version, DockerAPI: api,
		CRIU: transfer.CRIUInfo{Version: caps.Version, MemTrack: caps.MemTrack, LazyPages: caps.LazyPages},
		Host: hostInfo(ctx, s.dk),
	}
	if tc.Logger == nil {
		tc.Logger = s.log
	}
	s.tc = tc
	if s.sess, err = transfer.Dial(ctx, s.cfg.To, tc); err != nil {
		return err
	}
	s.report.Hosts = HostPair{Source: hostStack(tc.Hello.Host, tc.Hello.CRIU), Destination: hostStack(s.sess.Peer().Host, s.sess.Peer().CRIU)}
	if ids := s.sess.Peer().InDoubt; len(ids) > 0 {
		s.reconcile(ctx, ids)
	}
	s.log.Info("hosts", "source", s.report.Hosts.Source.String(), "destination", s.report.Hosts.Destination.String())
	s.stageDetail("hosts", ": "+s.report.Hosts.Source.String()+" -> "+s.report.Hosts.Destination.String())
	s.strategy, s.report.StrategyReason, err = chooseStrategy(s.cfg.Strategy, tc.Hello.CRIU, s.sess.Peer().CRIU)
	s.report.Strategy = s.strategy
	if err == nil {
		s.log.Info("strategy", "strategy", s.strategy, "reason", s.report.StrategyReason)
		s.stageDetail("strategy "+string(s.strategy), " ("+s.report.StrategyReason+")")
	}
	return err
}

// preflight has the destination check everything it can before anything is
// frozen, and ships the image if the destination lacks it.
func (s *source) preflight(ctx context.Context) error {
	s.stage("preflight")
	pre := &protocol.Preflight{MigrationID: s.id, Strategy: s.strategy,
		AllowNewAddress: s.cfg.AllowNewAddress, Sizes: s.tgt.sizes(ctx), DryRun: s.cfg.DryRun, CreateNetworks: s.cfg.CreateNetworks}
	err := s.tgt.describe(ctx, pre)
	defer s.tgt.preflightDone()
	if err != nil {
		return err
	}
	pre.RemotePages = s.strategy == protocol.StrategyStopAndCopy && pre.Process == nil && !s.cfg.LocalPages && s.sess.Peer().CRIU.PageServer
	s.remotePages = pre.RemotePages
	if err := s.sess.Send(ctx, pre); err != nil {
		return err
	}
	ok, err := transfer.Expect[*protocol.PreflightOK](ctx, s.sess)
	if err != nil {
		return fmt.Errorf("preflight: %w", err)
	}
	if d := time.Duration(ok.RestoreMillis) * time.Millisecond; d > 0 {
		// Measured beats assumed: the destination's last restore.
		s.cfg.PrecopyLimits.RestoreFloor = d
	}
	s.memory = pre.Sizes.Memory
	if s.cfg.DryRun {
		s.report.Check = &CheckResult{Sizes: pre.Sizes, NeedImage: ok.NeedImage, ImageLayers: len(pre.ImageLayers), HaveLayers: ok.HaveLayers,
			NewAddress: ok.NewAddress, LastRestore: time.Duration(ok.RestoreMillis) * time.Millisecond, Predicted: s.predictions(),
			MemAvailable: max(ok.MemAvailable, 0), DiskFree: max(ok.DiskFree, 0)}
		return nil
	}
	s.report.started = true
	s.renumbered = ok.Renumbered
	if s.newAddress = ok.NewAddress; ok.NewAddress {
		s.log.Warn("the container cannot keep its address on the destination: it gets a new one and its TCP connections will be closed")
		s.stage("new-address")
	}
	if ok.NeedImage {
		s.stage("image")
		s.report.ImageSent = true
		if err := s.sendImage(ctx, pre.Container, ok.HaveLayers); err != nil {
			return err
		}
	}
	if pre.Container.InitBinary != nil {
		if err := s.sendInit(ctx, pre.Container.InitBinary); err != nil {
			return err
		}
	}
	if s.logs != nil {
		return s.sendLogs(ctx, false)
	}
	return nil
}

// sendImage ships `docker save` of the image without the first have layers,
// which the destination already has.
func (s *source) sendImage(ctx context.Context, spec protocol.ContainerSpec, have int) error {
	dir, release, err := claimDir(s.cfg.WorkDir, "image-")
	if err != nil {
		return err
	}
	defer release()
	full := filepath.Join(dir, "full.tar")
	f, err := os.Create(full)
	if err != nil {
		return err
	}
	// Save by the user's reference when it still names this image, so the
	// tag travels too.
	ref := spec.ImageID
	if id, err := s.dk.ImageID(ctx, spec.Image); err == nil && id == spec.ImageID {
		ref = spec.Image
	}
	err = s.dk.SaveImage(ctx, ref, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if s.report.ImageBytesSkipped, err = stripLayers(full, filepath.Join(dir, "image.tar"), have); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	os.Remove(full)
	st, err := s.sess.SendDir(ctx, protocol.StreamImage, dir)
	if err != nil {
		return fmt.Errorf("send image: %w", err)
	}
	s.report.stream(protocol.StreamImage, st)
	return nil
}

// checkpoint dumps the container and, while it is frozen, ships it and has
// the destination restore it. The destination's confirmation is the commit
// point: before it, any failure resumes the container here.
func (s *source) checkpoint(ctx context.Context) error {
	spec, extra, images, err := s.prepareDump(ctx)
	if err != nil {
		criu.KeepLog(err, s.failedLogs()) // (a pre-copy round's)
		if errors.Is(err, ErrCannotMove) {
			s.sess.Fail(err) // the destination logs why, not an end of stream
		}
		return err
	}
	stopPages, err := s.servePages(ctx, &spec)
	if err != nil {
		return err
	}
	defer stopPages()
	s.stage("dump")
	var hookErr error
	var watchdog *dumpWatchdog
	restored := make(chan error, 1)
	for attempt := 1; ; attempt++ {
		endPages, perr := s.sendPages(ctx, &spec)
		if perr != nil {
			return perr
		}
		s.report.Dump, err = criu.Dump(s.cfg.CRIU, images, spec, criu.DumpHooks{
			// CRIU announces pre-dump just before it freezes the tree: the
			// freeze time measured from here is an upper bound.
			PreDump: func() {
				pid := criuChild(images)
				s.guardUpdate(func(p *guardPlan) { p.CRIU = pid })
				watchdog = watchDump(pid, spec, s.cfg.DumpTimeout, s.log)
				s.marks.frozen = time.Now()
			},
			PostDump: func() error {
				s.marks.dumped = time.Now()
				if watchdog.stop() {
					return errDumpTimeout
				}
				// A CRIU that dies meanwhile can neither commit nor roll back:
				// stop shipping at once.
				pctx, stop := contextUntilExit(ctx, watchdog.criu(), errCRIUDied)
				defer stop()
				hookErr = s.postDump(ctx, pctx, images, extra, spec.LazyPages, func(err error) {
					if err == nil {
						s.marks.running = time.Now()
						s.report.FreezeTime = s.marks.running.Sub(s.marks.frozen)
						s.report.Freeze = s.marks.breakdown(s.destSteps)
					}
					restored <- err
				})
				if cause := context.Cause(pctx); hookErr != nil && errors.Is(cause, errCRIUDied) {
					hookErr = fmt.Errorf("%w (%v)", cause, hookErr)
				}
				return hookErr
			},
		})
		endPages()
		if !s.retryDump(err, hookErr, spec, attempt, watchdog, images) {
			break
		}
	}
	if watchdog.stop() {
		err = fmt.Errorf("%w (%v): CRIU was stopped and the container thawed", errDumpTimeout, s.cfg.DumpTimeout)
		hookErr = err
	}
	if !s.marks.frozen.IsZero() && s.report.Dump.FrozenTime > time.Since(s.marks.frozen) {
		// A CRIU whose lazy page server reset its statistics (without
		// scripts/criu-patches/lazy-dump-stats.patch): its figures are
		// zeros and a frozen time from nowhere.
		s.report.Dump = criu.DumpStats{}
	}
	if err == nil && spec.LazyPages {
		// Every page was served, so the destination restored; its report
		// may still be on its way.
		err = <-restored
	}
	if err != nil {
		// Post-copy had begun if the destination reported its copy running.
		postCopy := false
		if spec.LazyPages && hookErr == nil {
			select {
			case rerr := <-restored:
				postCopy = rerr == nil
				if rerr != nil {
					// The destination's failure is the cause; CRIU only
					// saw its page client go.
					hookErr = rerr
				}
			case <-time.After(time.Second):
			}
		}
		criu.KeepLog(err, s.failedLogs()) // (the rollback removes the dump)
		err = s.dumpFailed(err, hookErr, postCopy)
		s.rollback(ctx, postCopy)
		if s.restoreAsked {
			err = s.resolveFailed(ctx, err)
		}
		return err
	}
	if spec.LazyPages {
		s.report.MemoryTime = time.Since(s.marks.running)
	}
	return s.commit(context.WithoutCancel(ctx))
}

// failedLogs is where the logs of failed CRIU runs are kept, the newest
// criu.KeptLogs: a failed migration's dump directory goes with it.
func (s *source) failedLogs() string { return filepath.Join(s.cfg.WorkDir, "failed-logs") }

// maxDumpAttempts bounds the dumps of one migration that fail for a
// momentary state of the tree (criu.Momentary).
const maxDumpAttempts = 3

// retryDump decides, after a dump, whether to dump again: only when it
// failed before anything was shipped (CRIU resumed the tree), for a
// momentary cause (a Unix connection in flight at the instant of the
// freeze), without pre-copy parents (a failed dump may have reset the
// kernel's dirty tracking that the parent's pages rely on), at most
// maxDumpAttempts times. It clears the images for the next attempt.
func (s *source) retryDump(err, hookErr error, spec criu.DumpSpec, attempt int, watchdog *dumpWatchdog, images string) bool {
	if err == nil || hookErr != nil || !s.marks.dumped.IsZero() || spec.Parent != "" || attempt >= maxDumpAttempts || !criu.Momentary(err) {
		return false
	}
	if watchdog.stop() {
		return false
	}
	s.unlockNetwork(spec.Pid) // (CRIU's lock, should a failed dump leave it)
	if rerr := clearDir(images); rerr != nil {
		s.log.Warn("clearing the failed dump's images; not dumping again", "err", rerr)
		return false
	}
	var ce *criu.Error
	errors.As(err, &ce) // (Momentary found it)
	why := ce.Cause
	s.log.Warn("the dump failed for a momentary state of the container; dumping again", "attempt", attempt, "cause", why)
	s.report.DumpRetries = append(s.report.DumpRetries, why)
	s.stageDetail("dump", " again: "+why)
	s.marks.frozen = time.Time{}
	time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
	return true
}

// clearDir removes what dir holds, keeping dir.
func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// prepareDump describes the tree, claims the dump's work directory and,
// for pre-copy, runs the rounds while the container keeps running. It
// returns the final dump's spec, the directories shipped with its images
// and the final images' directory.
func (s *source) prepareDump(ctx context.Context) (spec criu.DumpSpec, extra []namedDir, images string, err error) {
	if spec, extra, err = s.tgt.dumpSpec(ctx); err != nil {
		return spec, nil, "", err
	}
	if err := s.treeRefusals(spec.Pid, nil); err != nil {
		return spec, nil, "", err
	}
	spec.GhostLimit = uint32(s.cfg.GhostLimit)
	spec.NFTablesLock = s.nftLock && spec.Netns != 0
	if err := s.startGuard(spec); err != nil {
		return spec, nil, "", err
	}
	if s.dir, s.releaseDir, err = claimDir(s.cfg.WorkDir, "dump-"); err != nil {
		return spec, nil, "", err
	}
	images = filepath.Join(s.dir, imagesDir)
	if err := os.Mkdir(images, 0o700); err != nil {
		return spec, nil, "", err
	}
	if s.strategy.PreCopy() {
		err = s.precopy(ctx, &spec)
	}
	return spec, extra, images, err
}

// postDump ships the container while it is frozen and decides the commit.
// Stop-and-copy waits for the destination's restored report and commits
// by returning nil (CRIU kills the original). A lazy dump must return
// first: CRIU serves pages only afterwards, and the restore may already
// need some; the original stays frozen until every page is served, so
// the report is awaited in the background (onRestored).
//
// shipCtx ends when CRIU dies; ctx, which lasts, serves what outlives the
// notification (post-copy).
func (s *source) postDump(ctx, shipCtx context.Context, images string, extra []namedDir, lazy bool, onRestored func(error)) error {
	if err := s.tgt.dumped(); err != nil {
		return err
	}
	if err := s.ship(shipCtx, images, extra); err != nil {
		return err
	}
	if lazy {
		// Committing once every page is served: Docker must not restart
		// the original then. Rolled back if the post-copy fails.
		if err := s.tgt.keepDown(ctx); err != nil {
			return err
		}
		go func() {
			err := s.awaitRestored(ctx)
			if err != nil {
				// No restored copy will ask for pages.
				s.abortPages(err)
			}
			if err == nil {
				s.guardUpdate(func(p *guardPlan) {
					// The destination announced the address: reclaim it
					// until it must have noticed a dead link.
					p.PostCopy, p.AnnounceFor = true, s.cfg.Transfer.KeepAlive+s.cfg.Transfer.DeadPeerTimeout+2*time.Second
				})
				s.stage("post-copy")
			}
			onRestored(err)
		}()
		return nil
	}
	err := s.awaitRestored(shipCtx)
	onRestored(err)
	if err != nil {
		return err
	}
	// Committing: Docker must not restart the original once CRIU kills
	// it. Changed only now, so an agent killed earlier leaves the
	// container as it was.
	if err := s.tgt.keepDown(ctx); err != nil {
		return err
	}
	// The decision is recorded before CRIU acts on it.
	rec := OutcomeRecord{MigrationID: s.id, Container: s.report.Container, Destination: s.cfg.To, Commit: true, Decided: time.Now().UTC(),
		ContainerID: s.tgt.containerID(), Docker: s.cfg.Docker, KeepSource: s.cfg.KeepSource}
	rec.Moved, rec.Image = s.tgt.moved(s.renumbered)
	rec.DestinationName = s.sess.PeerName()
	if err := saveOutcome(s.cfg.WorkDir, rec); err != nil {
		return fmt.Errorf("record the commit: %w", err)
	}
	s.committing.Store(true)
	return nil
}

// dumpFailed explains a failed dump; CRIU has resumed the container here.
func (s *source) dumpFailed(err, hookErr error, duringPostCopy bool) error {
	if hookErr != nil {
		// CRIU's own error only says the notification failed.
		err = hookErr
	} else if s.remotePages && strings.Contains(err.Error(), "page-xfer") {
		// A destination that refused the pages (more than the preflight
		// allows) ends the session: its reason is the cause, CRIU only
		// saw its page server go.
		select {
		case <-s.sess.Done():
		case <-time.After(time.Second):
		}
		if perr := s.sess.Err(); errors.Is(perr, transfer.ErrPeer) {
			err = fmt.Errorf("%w (CRIU saw its page server go: %v)", perr, err)
		}
	}
	if duringPostCopy {
		err = fmt.Errorf("post-copy failed after the container had restarted on the destination, "+
			"which cannot continue without its memory and removes its copy: %w", err)
		s.sess.Fail(err)
	}
	return fmt.Errorf("%w; the container was resumed on this host", err)
}

// sendPages connects a stop-and-copy dump to the destination's page server
// when the migration sends its pages there (remotePages): spec.PagesTo
// becomes one end of a socket pair whose other end a tunnel stream
// carries, one stream for each dump attempt. The returned function, called
// once the dump returned, ends the stream.
func (s *source) sendPages(ctx context.Context, spec *criu.DumpSpec) (func(), error) {
	if !s.remotePages {
		return func() {}, nil
	}
	mine, theirs, err := criu.SocketPair()
	if err != nil {
		return nil, err
	}
	conn, err := net.FileConn(theirs)
	theirs.Close()
	if err != nil {
		mine.Close()
		return nil, err
	}
	spec.PagesTo = mine
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	var flowing atomic.Bool
	go func() {
		defer close(done)
		s.sess.Carry(cctx, conn, protocol.TunnelPages, transfer.TunnelOptions{
			Counted: func(n int64) {
				s.report.pagesSent.Store(n)
				if flowing.CompareAndSwap(false, true) {
					// (A pause here, for a fault-injection test, holds
					// the pages back with the container frozen.)
					s.stage("pages")
				}
			},
			Wire: func(n int64) { s.report.pagesWire.Store(n) },
		})
	}()
	return func() {
		// The dump is over: its page server acknowledged the last page
		// before CRIU went on, or the attempt failed. The stream ends
		// here, even if a process forked meanwhile inherited CRIU's end.
		mine.Close()
		cancel()
		<-done
		s.report.PageBytes, s.report.PageBytesWire = s.report.pagesSent.Load(), s.report.pagesWire.Load()
	}, nil
}

// servePages prepares a lazy dump: CRIU's page server on a free loopback
// port, reached by the destination through the session's page tunnel. The
// returned function stops serving.
func (s *source) servePages(ctx context.Context, spec *criu.DumpSpec) (func(), error) {
	if !s.strategy.PostCopy() {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close() // CRIU listens here once the dump is done
	spec.LazyPages, spec.PageServer = true, addr
	s.guardUpdate(func(p *guardPlan) { p.PageServer = addr })
	pctx, cancel := context.WithCancel(ctx)
	// over ends when the dump is over (the returned function), not with
	// ctx: a ctx that ends with the session must still see CRIU aborted.
	over, overEnd := context.WithCancel(context.WithoutCancel(ctx))
	done, abort := make(chan struct{}), make(chan struct{})
	var once sync.Once
	s.abortPages = func(why error) {
		once.Do(func() {
			s.log.Warn("aborting the page server: the original resumes", "cause", why)
			close(abort)
		})
	}
	go func() {
		// If the session dies, the destination fails, or the pages
		// cannot be served, before the destination's daemon connected,
		// CRIU would wait for a client forever, the original frozen: be
		// that client, and reset. CRIU may not listen yet (the session
		// can die in the instant between the post-dump notification and
		// its listen): try until it does or the dump is over.
		select {
		case <-s.sess.Done():
		case <-abort:
		case <-ctx.Done(): // the migration is given up
		case <-over.Done():
			return
		}
		lazypages.AbortWhenListening(over, addr, 100*time.Millisecond)
	}()
	go func() {
		defer close(done)
		err := lazypages.Serve(pctx, s.sess, addr, func(n int64) {
			s.report.pagesSent.Store(n)
			if p := s.cfg.Transfer.Progress; p != nil {
				p(lazypages.Stream, n)
			}
		}, s.report.pagesWire.Store)
		if err != nil && pctx.Err() == nil {
			s.abortPages(fmt.Errorf("serving pages: %w", err))
		}
	}()
	return func() {
		cancel()
		overEnd()
		<-done
		s.report.PageBytes = s.report.pagesSent.Load()
		s.report.PageBytesWire = s.report.pagesWire.Load()
	}, nil
}

// ship runs inside CRIU's post-dump notification: it sends the images and
// the target's other directories (a container's writable layer and
// volumes), then asks the destination to restore.
func (s *source) ship(ctx context.Context, images string, extra []namedDir) error {
	s.stage("transfer")
	g, gctx := errgroup.WithContext(ctx)
	send := func(name, dir string) {
		g.Go(func() error {
			st, err := s.sess.SendDir(gctx, name, dir)
			if err != nil {
				return fmt.Errorf("send %s: %w", name, err)
			}
			s.report.stream(name, st)
			return nil
		})
	}
	g.Go(func() error {
		// The parent link is local: the destination makes its own.
		st, err := s.sess.SendDirSkipping(gctx, protocol.StreamImages, images, []string{"parent"})
		if err != nil {
			return fmt.Errorf("send %s: %w", protocol.StreamImages, err)
		}
		s.report.stream(protocol.StreamImages, st)
		return nil
	})
	for _, d := range extra {
		send(d.name, d.dir)
	}
	if s.logs != nil {
		g.Go(func() error { return s.sendLogs(gctx, true) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return s.askRestore(ctx)
}

// askRestore has the destination restore what was shipped. Outside
// post-copy, from here the destination may hold a restored copy in doubt
// if the session breaks: the guard must then tell it what became of the
// original.
func (s *source) askRestore(ctx context.Context) error {
	s.marks.shipped = time.Now()
	s.stage("restore")
	if !s.strategy.PostCopy() {
		s.guardUpdate(func(p *guardPlan) { p.Restored = true })
		s.restoreAsked = true
	}
	return s.sess.Send(ctx, &protocol.Restore{})
}

// awaitRestored receives the destination's report that its copy runs.
func (s *source) awaitRestored(ctx context.Context) error {
	done, err := transfer.Expect[*protocol.Restored](ctx, s.sess)
	if err != nil {
		return fmt.Errorf("restore on destination: %w", err)
	}
	s.report.ContainerID, s.report.Pid = done.ContainerID, done.Pid
	s.report.RestoreTime = time.Duration(done.RestoreMillis) * time.Millisecond
	s.report.Restore = criu.RestoreStats{PagesRestored: done.PagesRestored, ForkingMicros: done.ForkingMicros, RestoreMicros: done.RestoreMicros}
	s.destSteps = done.Steps
	if a := s.tgt.address(); s.newAddress || a != "" && done.IPv4 != a {
		s.report.NewAddress = done.IPv4
	}
	return nil
}

// commit runs after CRIU killed the original: tell the destination, then
// remove (or keep) the stopped original.
func (s *source) commit(ctx context.Context) error {
	s.committing.Store(true)
	s.stage("commit")
	if err := s.sendCommit(ctx); err != nil {
		if s.strategy.PostCopy() {
			// Every page arrived: that, not this message, commits there.
			return fmt.Errorf("committed here, but the destination did not acknowledge: %w", err)
		}
		// Its copy there holds the addresses, paused, until it hears of
		// the commit: this host's Docker must not give them out meanwhile.
		if _, rerr := s.tgt.reserve(ctx, s.renumbered); rerr != nil {
			s.log.Error("this host could not reserve the addresses the container took along", "err", rerr)
		}
		if err := s.resolveCommit(ctx, err); err != nil {
			return err
		}
	}
	dropOutcome(s.cfg.WorkDir, s.id)
	var removeErr error
	if !s.cfg.KeepSource {
		removeErr = s.tgt.remove(ctx)
	}
	// Reserved whether or not the ended original could be removed: its
	// processes are gone, and so is its hold on the addresses.
	var err error
	s.report.Reservations, err = s.tgt.reserve(ctx, s.renumbered)
	if err != nil {
		s.log.Error("the container moved, but this host could not reserve its address", "err", err)
		s.report.Warnings = append(s.report.Warnings, fmt.Sprintf("this host could not reserve the address the container took along, "+
			"so its Docker may give the address to another container: %v", err))
	}
	return removeErr
}

func (s *source) sendCommit(ctx context.Context) error {
	if err := s.sess.Send(ctx, &protocol.Commit{}); err != nil {
		return err
	}
	done, err := transfer.Expect[*protocol.Done](ctx, s.sess)
	if err != nil {
		return err
	}
	s.report.PostCopy = done.PostCopy
	return nil
}

// resolveAbortFor bounds how long a failed migrate-src itself tells the
// destination to drop its copy before leaving that to its guard: the
// container already runs here again, so nobody should wait long for it.
const resolveAbortFor = 10 * time.Second

// resolveFailed settles, after a failed dump, a destination that was asked
// to restore and may hold a copy in doubt. What happened decides, as for
// the guard: an original that runs here again means the copy must go; one
// that CRIU ended (the dump failed after the commit point) means the copy
// is the container now. failure is the dump's error, returned explained.
func (s *source) resolveFailed(ctx context.Context, failure error) error {
	ctx = context.WithoutCancel(ctx)
	commit := !s.tgt.running(ctx)
	if !commit {
		dropOutcome(s.cfg.WorkDir, s.id)
	}
	s.sess.Fail(errors.New("the source's dump failed"))
	wait := resolveAbortFor
	if commit {
		wait = s.cfg.ResolveFor
	}
	if commit {
		// The original is ended: its addresses stay with the copy, if
		// there is one (given back below if there is none).
		if _, err := s.tgt.reserve(ctx, s.renumbered); err != nil {
			s.log.Error("this host could not reserve the addresses the container took along", "err", err)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	state, err := deliverOutcome(dctx, s.cfg.To, s.tc, s.id, commit, s.log)
	switch {
	case err != nil:
		s.handOver = s.guard != nil
		s.log.Error("the destination may hold a paused copy: the guard goes on telling it the outcome", "commit", commit, "err", err)
	case commit && state == protocol.OutcomeRemoved:
		// No copy there: the ended original is all there is (kept).
		s.unreserve(ctx)
		dropOutcome(s.cfg.WorkDir, s.id)
	case commit:
		dropOutcome(s.cfg.WorkDir, s.id)
		return fmt.Errorf("%w; but CRIU had ended the original, so the destination's copy was committed and runs there", failure)
	}
	return failure
}

// resolveCommit delivers the commit in new sessions after the migration's
// own session broke (lost): the destination holds its copy paused until
// it hears it. Failing that, the guard goes on trying.
func (s *source) resolveCommit(ctx context.Context, lost error) error {
	s.stageDetail("resolve", fmt.Sprintf(": the link broke before the destination confirmed the commit (%v); delivering it in a new session", lost))
	dctx, cancel := context.WithTimeout(ctx, s.cfg.ResolveFor)
	defer cancel()
	state, err := deliverOutcome(dctx, s.cfg.To, s.tc, s.id, true, s.log)
	switch {
	case err != nil:
		s.handOver = s.guard != nil
		return fmt.Errorf("committed here (the original is gone), but the destination has not confirmed, so its copy stays paused: %w; "+
			"the migration's guard goes on delivering the commit (`migrate-src status` shows it)", err)
	case state == protocol.OutcomeRemoved:
		s.unreserve(ctx)
		dropOutcome(s.cfg.WorkDir, s.id)
		return fmt.Errorf("committed here, but the destination had removed its copy: the container is lost")
	}
	s.log.Info("commit delivered in a new session", "destination_state", state)
	return nil
}

// rollback undoes what the source changed; CRIU has already resumed the
// original. It outlives a cancelled ctx.
func (s *source) rollback(ctx context.Context, postCopy bool) {
	s.tgt.rollback(context.WithoutCancel(ctx), postCopy)
}

// unlockNetwork removes CRIU's network lock from the resumed tree: CRIU
// leaves it after a failed post-copy, and a CRIU that died (killed, or
// stopped at its deadline) leaves it whatever the phase.
func (s *source) unlockNetwork(pid int) {
	if err := criu.UnlockNetwork(pid); err != nil {
		s.log.Error("rollback: the resumed tree's network is still locked", "err", err)
	}
}

// lockTree claims the container (or process tree): one migration at a time.
func (s *source) lockTree(ctx context.Context) error {
	key := s.tgt.lockKey()
	me := lockHolder{Pid: os.Getpid(), Role: roleSource, Destination: s.cfg.To, Since: time.Now()}
	var err error
	s.lock, err = lockMigration(ctx, s.cfg.WorkDir, key, me, func(h lockHolder) {
		s.stageDetail("waiting", fmt.Sprintf(" for the %s (pid %d) of an interrupted migration of it to finish", h.Role, h.Pid))
	})
	if err != nil {
		return fmt.Errorf("%s: %w", s.report.Container, err)
	}
	return nil
}

// startGuard starts the migration's guard before anything is frozen.
func (s *source) startGuard(spec criu.DumpSpec) error {
	if s.cfg.GuardBinary == "" {
		return nil
	}
	plan := guardPlan{
		MigrationID: s.id, Container: s.tgt.containerID(), Docker: s.cfg.Docker, Pid: spec.Pid, Freezer: spec.FreezeCgroup,
		// Before post-copy the destination has not announced the address:
		// one short announcement undoes any early one.
		Announce: s.tgt.address() != "", AnnounceFor: 150 * time.Millisecond,
		KeepSource: s.cfg.KeepSource, Destination: s.cfg.To, CRIUVersion: s.tc.Hello.CRIU.Version,
	}
	plan.Moved, plan.Image = s.tgt.moved(s.renumbered)
	g, err := startGuard(s.cfg.GuardBinary, s.cfg.GuardArgs, s.cfg.WorkDir, s.lock, plan, s.log)
	if err != nil {
		return err
	}
	s.guard = g
	return nil
}

// guardUpdate tells the guard what changed. A guard that cannot be told
// is logged, not fatal: it still acts on what it knew.
func (s *source) guardUpdate(change func(*guardPlan)) {
	if err := s.guard.update(change); err != nil {
		s.log.Warn("guard", "err", err)
	}
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// warn logs msg and keeps it in the report.
func (s *source) warn(msg string) {
	s.log.Warn(msg)
	s.report.mu.Lock()
	s.report.Warnings = append(s.report.Warnings, msg)
	s.report.mu.Unlock()
}

// unreserve gives back the addresses reserved for a container whose copy
// the destination turned out not to have.
func (s *source) unreserve(ctx context.Context) {
	moved, _ := s.tgt.moved(s.renumbered)
	if err := unreserveMoved(ctx, OutcomeRecord{Docker: s.cfg.Docker, Moved: moved}); err != nil {
		s.log.Error("the addresses reserved for the container stay reserved", "err", err)
	}
}
