//go:build linux

package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dockmove/dockmove/internal/criu"
	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/internal/restoreruntime"
	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

// LabelMigration marks containers created by migrate-dst; its value is the
// migration ID.
const LabelMigration = "org.dockmove.migration"

// DestConfig configures the destination agent.
type DestConfig struct {
	// Docker is the local dockerd's address. Default "" (DOCKER_HOST or the
	// default socket).
	Docker string
	// WorkDir holds staging areas and the state of migrations in progress.
	// Default /var/lib/dockmove/destination.
	WorkDir string
	// RuntimeState is the restore runtime's state directory, as registered
	// with dockerd. Default restoreruntime.DefaultStateDir.
	RuntimeState string
	// CRIU is the criu binary. Default "" (criu in PATH).
	CRIU string
	// SentinelBinary is migrate-dst's own binary, started (SentinelArg)
	// as each migration's sentinel: should migrate-dst die with a
	// restored copy not settled, the sentinel stops the copy. Default ""
	// (none).
	SentinelBinary string
	// RestoreTimeout bounds the restore (docker start through the restore
	// runtime); a restore that hangs fails the migration. Default 5m.
	RestoreTimeout time.Duration
	// RestoreCRIUOptions are extra CRIU options for every restore, one
	// config-file line each (e.g. "tcp-close"). Default none.
	RestoreCRIUOptions []string
	// AllowProcesses accepts plain process trees (migrate-src --pid),
	// restored with CRIU directly on this host, outside any container.
	// Without Docker here, only those are accepted. Default false.
	AllowProcesses bool
	// AllowCaps are the capabilities a container may add here beyond
	// Docker's default set ("ALL": any). A container that adds another is
	// refused before anything is frozen. Default none.
	AllowCaps []string
	// AllowLabels, when any is given, are the label keys (or patterns,
	// e.g. "com.example.*") a container may carry here; DenyLabels those
	// it may not (e.g. "traefik.*": this host's proxy routes by them).
	// A container with another is refused before anything is frozen.
	// dockmove's own labels are refused from any source. Default: any.
	AllowLabels, DenyLabels []string
	// HostPorts are the host ports a container may publish here (-p):
	// comma-separated ports and FIRST-LAST ranges. Default "": every port.
	// A container publishing another is refused before anything is frozen.
	HostPorts string
	// BindBases are the directories below which a container's bind mounts
	// of host paths may be (migrate-src --bind-mounts): copied ones are
	// made there, shared ones must be found there. Default none: bind
	// mounts are refused.
	BindBases []string
	// Networks are the networks a migration may attach a container to
	// here. Default none listed: any this host has (or creates).
	Networks []string
	// CreateNetworks lets a migration whose source asks for it
	// (migrate-src --create-networks) create here, from the source's
	// definition under this host's policy, a network the container is on
	// and this host lacks. Default false: refused.
	CreateNetworks bool
	// NetworkRanges are this host's own allocation ranges (--ip-range)
	// for networks it creates, by name (one IPv4 and, for a dual-stack
	// network, one IPv6): required for a network shared with other hosts
	// (macvlan), whose ranges must not overlap.
	NetworkRanges map[string][]string
	// Transfer configures sessions (TLS, compression, limits). Its peer
	// wait and rate floor also bound each phase of an incoming migration
	// as a whole (destination_phases.go).
	Transfer transfer.Config
	// Observer learns of each migration's start and end and of each
	// refusal (migrate-dst's metrics). Nil: nobody.
	Observer Observer
	// Logger receives the agent's log. Nil discards it.
	Logger *slog.Logger
}

// DefaultDestConfig returns the documented defaults.
func DefaultDestConfig() DestConfig {
	return DestConfig{WorkDir: "/var/lib/dockmove/destination", RuntimeState: restoreruntime.DefaultStateDir, RestoreTimeout: 5 * time.Minute, Transfer: transfer.DefaultConfig()}
}

// Validate reports a configuration that cannot work.
func (c DestConfig) Validate() error {
	if c.WorkDir == "" || c.RuntimeState == "" {
		return errors.New("migrate: work and runtime state directories are required")
	}
	if c.RestoreTimeout <= 0 {
		return errors.New("migrate: restore timeout must be positive")
	}
	if _, err := parseAllowedCaps(c.AllowCaps); err != nil {
		return err
	}
	if err := parseLabelPatterns(append(slices.Clone(c.AllowLabels), c.DenyLabels...)); err != nil {
		return err
	}
	if _, err := parsePortRanges(c.HostPorts); err != nil {
		return err
	}
	for _, b := range c.BindBases {
		if !filepath.IsAbs(b) || filepath.Clean(b) == "/" {
			return fmt.Errorf("migrate: bind base %q must be an absolute directory other than /", b)
		}
	}
	for name, rs := range c.NetworkRanges {
		families := map[bool]int{}
		for _, r := range rs {
			ip, _, err := net.ParseCIDR(r)
			if err != nil {
				return fmt.Errorf("migrate: network range %s=%q is not a CIDR", name, r)
			}
			if families[ip.To4() != nil]++; families[ip.To4() != nil] > 1 {
				return fmt.Errorf("migrate: network %s has two ranges of one family: one IPv4, one IPv6", name)
			}
		}
	}
	return c.Transfer.ValidateSettings()
}

// Server accepts migrations. Several may run at once; two never touch the
// same container name.
type Server struct {
	cfg DestConfig
	log *slog.Logger
	dk  *docker.Client
	// undoWith replaces dk when undoing migrations (tests' fakes); nil in
	// the agent.
	undoWith undoer
	hello    transfer.Hello
	gate     handshakeGate
	mu       sync.Mutex
	names    map[string]bool
	// active holds the IDs of the migrations whose sessions run here.
	active map[string]bool
	wg     sync.WaitGroup
	// lastRestore is how long the last restore here took, in milliseconds.
	lastRestore atomic.Int64
	// closed is closed by Close: background cleanups stop.
	closed    chan struct{}
	closeOnce sync.Once
}

// closing is closed once the server is closed.
func (s *Server) closing() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed == nil {
		s.closed = make(chan struct{})
	}
	return s.closed
}

// NewServer checks this host (CRIU, Docker, the restore runtime) and cleans
// up after migrations a previous run left unfinished.
func NewServer(ctx context.Context, cfg DestConfig) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	caps, err := criu.Probe(ctx, cfg.CRIU)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: logger(cfg.Logger), names: map[string]bool{}, active: map[string]bool{}}
	api, installed, err := s.connectDocker(ctx)
	if err != nil {
		return nil, err
	}
	s.hello = transfer.Hello{
		Role: transfer.RoleDestination, Agent: Version, DockerAPI: api, RuntimeInstalled: installed,
		CRIU: transfer.CRIUInfo{Version: caps.Version, MemTrack: caps.MemTrack, LazyPages: caps.LazyPages, PageServer: true},
		Host: hostInfo(ctx, s.dk),
	}
	for _, d := range []string{s.stateDir(), s.stagingDir(), s.processDir(), cfg.RuntimeState} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			s.Close()
			return nil, err
		}
	}
	s.recover(ctx)
	return s, nil
}

// connectDocker reaches the local dockerd. Without one, a destination that
// accepts processes runs on, refusing containers.
func (s *Server) connectDocker(ctx context.Context) (api string, runtime bool, err error) {
	dk, err := docker.New(s.cfg.Docker)
	if err == nil {
		if api, err = dk.APIVersion(ctx); err == nil {
			runtime, err = dk.HasRuntime(ctx, restoreruntime.Name)
		}
		if err != nil {
			dk.Close()
		}
	}
	if err != nil {
		if !s.cfg.AllowProcesses {
			return "", false, err
		}
		s.log.Warn("no Docker here: only process migrations will be accepted", "err", err)
		return "", false, nil
	}
	s.dk = dk
	return api, runtime, nil
}

func (s *Server) stateDir() string   { return stateDirOf(s.cfg.WorkDir) }
func (s *Server) stagingDir() string { return filepath.Join(s.cfg.WorkDir, "staging") }
func (s *Server) processDir() string { return filepath.Join(s.cfg.WorkDir, "processes") }

// Close releases the Docker client after the running migrations end.
func (s *Server) Close() error {
	s.closing()
	s.closeOnce.Do(func() { close(s.closed) })
	s.wg.Wait()
	if s.dk == nil {
		return nil
	}
	return s.dk.Close()
}

// Serve accepts sessions on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	s.log.Info("listening", "addr", ln.Addr().String(), "runtime_installed", s.hello.RuntimeInstalled, "criu", criuVersion(s.hello.CRIU), "host", s.hello.Host.String())
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !acceptRetryable(err) {
				return fmt.Errorf("migrate-dst: accept: %w", err)
			}
			// Out of descriptors or a connection aborted before it was
			// accepted: keep serving (and keep the migrations in flight).
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		release, ok := s.gate.enter(conn.RemoteAddr())
		if !ok {
			conn.Close()
			s.observer().Refused(RefusalBusy)
			if s.gate.shouldLog() {
				s.log.Warn("too many connections still in their handshake; dropping new ones", "peer", conn.RemoteAddr().String(), "limit", maxHandshakes, "per_address", maxHandshakesPerAddr)
			}
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(ctx, conn, release)
		}()
	}
}

// Connections in their handshake (TLS and hello, bounded in time by the
// handshake timeout) are limited, in all and per source address, so that a
// flood of half-open connections cannot exhaust the agent; migrations
// already running are not counted.
const (
	maxHandshakes        = 32
	maxHandshakesPerAddr = 4
)

// handshakeGate counts connections in their handshake.
type handshakeGate struct {
	mu      sync.Mutex
	total   int
	perAddr map[string]int
	logged  time.Time
}

// enter admits a connection from addr, or reports false when a limit is
// reached; release ends its handshake.
func (g *handshakeGate) enter(addr net.Addr) (release func(), ok bool) {
	host := addr.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.perAddr == nil {
		g.perAddr = map[string]int{}
	}
	if g.total >= maxHandshakes || g.perAddr[host] >= maxHandshakesPerAddr {
		return nil, false
	}
	g.total++
	g.perAddr[host]++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.total--
			if g.perAddr[host]--; g.perAddr[host] == 0 {
				delete(g.perAddr, host)
			}
		})
	}, true
}

// shouldLog rate-limits the gate's warning to one a second.
func (g *handshakeGate) shouldLog() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.logged) < time.Second {
		return false
	}
	g.logged = time.Now()
	return true
}

// acceptRetryable reports an Accept error that passes: the process or the
// system is out of descriptors, or a connection died in the queue.
func acceptRetryable(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

func (s *Server) handle(ctx context.Context, conn net.Conn, handshakeDone func()) {
	tc := s.cfg.Transfer
	tc.Hello = s.hello
	tc.InDoubtFor = s.inDoubtFrom
	if tc.Logger == nil {
		tc.Logger = s.log
	}
	wire := &countingConn{Conn: conn}
	sess, err := transfer.Server(ctx, wire, tc)
	handshakeDone()
	if err != nil {
		s.refused(ctx, err)
		return // transfer.Server logged the refusal with the peer's address
	}
	log := s.log.With("peer", sess.RemoteAddr().String())
	// A source that authenticated and then says nothing must not hold a
	// session: its first message is due within the peer wait.
	fctx, cancel := context.WithTimeoutCause(ctx, tc.PeerWaitTimeout,
		fmt.Errorf("%w: the peer sent nothing within %v of its hello", transfer.ErrIdle, tc.PeerWaitTimeout))
	first, err := sess.Recv(fctx)
	cancel()
	if err != nil {
		if cause := context.Cause(fctx); fctx.Err() != nil && ctx.Err() == nil {
			err = cause
			sess.Fail(err)
			s.refused(ctx, err)
		}
		log.Warn("session ended before its first message", "err", err)
		return
	}
	switch m := first.(type) {
	case *protocol.Resolve:
		s.serveResolve(ctx, sess, m, log)
	case *protocol.Preflight:
		s.serveMigration(ctx, &incoming{srv: s, sess: sess, pre: m, log: log, wire: wire})
	default:
		sess.Fail(fmt.Errorf("%w: %s to begin with", transfer.ErrUnexpectedMessage, first.Type()))
		s.observer().Refused(RefusalBadInput)
	}
}

// serveMigration runs one incoming migration to its end.
func (s *Server) serveMigration(ctx context.Context, in *incoming) {
	sess, id := in.sess, in.pre.MigrationID
	if !s.setActive(id, true) {
		sess.Fail(fmt.Errorf("migration %s is already under way here", id))
		s.observer().Refused(RefusalBusy)
		return
	}
	defer s.setActive(id, false)
	if _, err := os.Lstat(s.statePath(id)); err == nil {
		// An earlier migration's record (perhaps one in doubt) must never
		// be overwritten by a new one that reuses its ID.
		err := refuseFor(RefusalConflict, fmt.Errorf("migration ID %s already has a record here (see migrate-dst status); the source must use a new ID", id))
		in.log.Error("migration refused", "err", err)
		in.refuse(ctx, err)
		sess.Fail(err)
		return
	}
	if err := in.run(ctx); err != nil {
		in.log.Error("migration failed", "container", in.name(), "err", err)
		sess.Fail(err)
		return
	}
	if in.pre.DryRun {
		in.log.Info("dry run answered: the migration would be accepted", "container", in.name())
	} else {
		in.log.Info("migration committed", "container", in.name(), "id", in.state.ContainerID)
	}
	sess.Close()
}

// setActive marks migration id as having a live session here (on) or
// not; it refuses to mark one twice.
func (s *Server) setActive(id string, on bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on && s.active[id] {
		return false
	}
	if on {
		s.active[id] = true
	} else {
		delete(s.active, id)
	}
	return true
}

// reserve claims a container name for one migration.
func (s *Server) reserve(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.names[name] {
		return false
	}
	s.names[name] = true
	return true
}

func (s *Server) release(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.names, name)
}

// Phases a migration goes through on the destination, as recorded in its
// state file.
const (
	phasePrepared = "prepared" // shell may exist; source not committed: remove on failure
	phaseRestored = "restored" // copy runs, commit not yet received: in doubt on failure
	phaseInDoubt  = "in-doubt" // the session broke while restored: copy paused until the source resolves it
	phaseComplete = "complete" // post-copy: every page arrived, the source has committed
)

// migrationState is persisted so a restarted agent can clean up.
type migrationState struct {
	MigrationID string   `json:"migration_id"`
	Name        string   `json:"name"`
	Phase       string   `json:"phase"`
	ContainerID string   `json:"container_id,omitempty"`
	Volumes     []string `json:"volumes,omitempty"`
	// Networks are the networks made for the container, removed on
	// rollback.
	Networks []string `json:"networks,omitempty"`
	// BindDirs are the directories made for copied bind mounts, removed
	// on rollback.
	BindDirs []string `json:"bind_dirs,omitempty"`
	// Reservations are this host's reservations of the container's
	// addresses, removed to make way for it (package reserve): made
	// again on rollback.
	Reservations []docker.Reservation `json:"reservations,omitempty"`
	ImageLoaded  string               `json:"image_loaded,omitempty"`
	Staging      string               `json:"staging,omitempty"`
	// RootfsStaging holds the writable layer until the restore runtime
	// moves it in (the containerd image store).
	RootfsStaging string `json:"rootfs_staging,omitempty"`
	Lazy          bool   `json:"lazy,omitempty"` // post-copy: memory still arriving while restored
	// Restart is the container's restart policy, given to it at the commit:
	// until then its copy here has none, so that dockerd never starts it
	// afresh (after a restart of its own, or when the copy exits) while
	// the original may run on the source.
	Restart    string `json:"restart,omitempty"`
	RestartMax int    `json:"restart_max,omitempty"`
	// A process migration's directory and restored process (its PID and
	// start time, so a restarted agent never signals a recycled PID).
	ProcessDir string `json:"process_dir,omitempty"`
	Pid        int    `json:"pid,omitempty"`
	PidStart   uint64 `json:"pid_start,omitempty"`
	Updated    time.Time
	// Source is the name the source's certificate proves: when a copy is
	// in doubt, that source is asked for the outcome at its next contact.
	Source string `json:"source,omitempty"`
}

var errAgentRestarted = errors.New("migrate-dst restarted during the migration")
