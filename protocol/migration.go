package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dockmove/dockmove/transfer"
)

// Migration messages (spec.md). Their numbers follow the session's own.
const (
	MsgPreflight   transfer.MsgType = 10 // source -> destination: what will move
	MsgPreflightOK transfer.MsgType = 11 // destination -> source: ready, and what it lacks
	MsgRestore     transfer.MsgType = 12 // source -> destination: everything is shipped
	MsgRestored    transfer.MsgType = 13 // destination -> source: the copy runs
	MsgCommit      transfer.MsgType = 14 // source -> destination: the original is gone
	MsgDone        transfer.MsgType = 15 // destination -> source: committed
	MsgPreRound    transfer.MsgType = 16 // source -> destination: a pre-copy round follows, or the rounds are over
	MsgResolve     transfer.MsgType = 17 // source -> destination, in a new session: a migration's outcome
	MsgOutcome     transfer.MsgType = 18 // destination -> source: what it did with the outcome
)

// Stream names used by a migration.
const (
	StreamImage    = "image"     // `docker save` of the container's image
	StreamRootfs   = "rootfs"    // the container's writable layer
	StreamImages   = "images"    // the CRIU images of the final dump
	StreamInit     = "init"      // the source's docker-init (InitFile), for --init containers
	StreamLogs     = "logs"      // the container's log files, before the freeze (Preflight.Logs)
	StreamLogsTail = "logs-tail" // what they gained since, with the final dump
	// TunnelPages carries a stop-and-copy dump's memory pages to the
	// destination's page server as CRIU dumps them (Preflight.RemotePages):
	// a tunnel stream per dump attempt.
	TunnelPages = "dump-pages"
)

// The log drivers whose files ship (Preflight.Logs): both keep them in the
// container's directory, in a format of their own that every Docker
// release reads.
const (
	LogsJSONFile = "json-file"
	LogsLocal    = "local"
)

// Files of the log streams: the current log, the rotated ones (RotatedLog)
// and, in StreamLogsTail, what the current log gained since StreamLogs
// (LogTail) or, if it was rotated meanwhile, a whole new set.
const (
	CurrentLog = "current"
	LogTail    = "tail"
)

// RotatedLog names rotated log n (1: the newest), compressed or not.
func RotatedLog(n int, gz bool) string {
	name := "rotated-" + strconv.Itoa(n)
	if gz {
		name += ".gz"
	}
	return name
}

// MaxRotatedLogs bounds the rotated logs that ship.
const MaxRotatedLogs = 100

// InitFile names the one file of the init stream.
const InitFile = "docker-init"

// MaxInitBinary bounds the docker-init a source may send (tini, Docker's
// init, is under 1 MiB static).
const MaxInitBinary = 64 << 20

// VolumeStream names the stream carrying volume i.
func VolumeStream(i int) string { return "volume-" + strconv.Itoa(i) }

// BindStream names the stream carrying the contents of bind mount i
// (copied binds only).
func BindStream(i int) string { return "bind-" + strconv.Itoa(i) }

// RoundStream names the stream carrying pre-copy round i (from 1).
func RoundStream(i int) string { return "round-" + strconv.Itoa(i) }

// MaxPreRounds bounds the pre-copy rounds a destination accepts.
const MaxPreRounds = 64

// Strategy is how a migration moves the memory.
type Strategy string

// The strategies. Auto is resolved by the source before the preflight and
// never goes on the wire.
const (
	StrategyStopAndCopy Strategy = "stop-and-copy" // one dump, all memory while frozen
	StrategyLazy        Strategy = "lazy"          // post-copy: memory follows through userfaultfd
	StrategyPrecopy     Strategy = "precopy"       // pre-dump rounds while running, then a dump of what changed
	StrategyHybrid      Strategy = "hybrid"        // pre-dump rounds, then a lazy final dump
	StrategyAuto        Strategy = "auto"
)

// Strategies lists the strategies that go on the wire.
var Strategies = []Strategy{StrategyStopAndCopy, StrategyLazy, StrategyPrecopy, StrategyHybrid}

// ParseStrategy accepts a strategy's name, auto included.
func ParseStrategy(name string) (Strategy, error) {
	if s := Strategy(name); s == StrategyAuto || slices.Contains(Strategies, s) {
		return s, nil
	}
	return "", fmt.Errorf("unknown strategy %q (auto, %s)", name, joinStrategies(Strategies))
}

func joinStrategies(list []Strategy) string {
	names := make([]string, len(list))
	for i, s := range list {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

func (s Strategy) String() string { return string(s) }

// PreCopy reports whether s ships pre-dump rounds while the container runs.
func (s Strategy) PreCopy() bool { return s == StrategyPrecopy || s == StrategyHybrid }

// PostCopy reports whether s moves memory after the restore (lazy pages).
func (s Strategy) PostCopy() bool { return s == StrategyLazy || s == StrategyHybrid }

// Preflight asks the destination whether it can take the container,
// before anything is frozen.
type Preflight struct {
	MigrationID string        `json:"migration_id"`
	Strategy    Strategy      `json:"strategy"`
	Container   ContainerSpec `json:"container"`
	// AllowNewAddress lets the destination give the container a new
	// address when it cannot keep the old one; its TCP connections are
	// then closed on restore.
	AllowNewAddress bool `json:"allow_new_address"`
	// Sizes estimates what the destination must store, for its disk check.
	Sizes Sizes `json:"sizes"`
	// ImageLayers are the image's layer diff IDs, base first, so the
	// destination can say which it already has.
	ImageLayers []string `json:"image_layers"`
	// Process, when set, moves a plain process tree instead of a
	// container: Container, ImageLayers and the image are then unused.
	Process *ProcessSpec `json:"process,omitempty"`
	// DryRun asks only whether the destination would take it (migrate-src
	// check): it answers as to a migration, then creates and keeps
	// nothing, and the session ends.
	DryRun bool `json:"dry_run,omitempty"`
	// CreateNetworks asks the destination to create, from their
	// definitions, the container's networks it lacks (migrate-src
	// --create-networks); the destination's policy decides.
	CreateNetworks bool `json:"create_networks,omitempty"`
	// Logs names the log driver whose files ship, so that `docker logs`
	// on the destination shows the container's whole history: on
	// StreamLogs before the freeze, then what was appended since on
	// StreamLogsTail with the final dump ("": none ship).
	Logs string `json:"logs,omitempty"`
	// Devices are the device nodes in the trees that ship (a process made
	// them with mknod), so that the destination decides before anything
	// is frozen; its receiver takes those and no other.
	Devices []DeviceNode `json:"devices,omitempty"`
	// RemotePages: the final dump (stop-and-copy, no pre-copy) sends the
	// memory pages through TunnelPages to a page server on the
	// destination as CRIU writes them, not in StreamImages after it. Only
	// to a destination whose hello offers it (CRIUInfo.PageServer).
	RemotePages bool `json:"remote_pages,omitempty"`
}

// MaxDeviceNodes bounds the device nodes a preflight announces.
const MaxDeviceNodes = 1024

// DeviceNode is a device node in a shipped tree.
type DeviceNode struct {
	Stream string `json:"stream"` // StreamRootfs, VolumeStream(i) or BindStream(i)
	Path   string `json:"path"`   // relative to the stream's root
	Block  bool   `json:"block,omitempty"`
	Major  uint32 `json:"major"`
	Minor  uint32 `json:"minor"`
}

func (d DeviceNode) String() string {
	kind := "c"
	if d.Block {
		kind = "b"
	}
	return fmt.Sprintf("%s (%s %d:%d)", d.Path, kind, d.Major, d.Minor)
}

var deviceStreamPattern = regexp.MustCompile(`^(` + StreamRootfs + `|volume-[0-9]{1,2}|bind-[0-9]{1,2})$`)

func (d DeviceNode) Validate() error {
	switch {
	case !deviceStreamPattern.MatchString(d.Stream):
		return fmt.Errorf("device node in stream %q", d.Stream)
	case d.Path == "" || path.IsAbs(d.Path) || path.Clean(d.Path) != d.Path || d.Path == ".." || strings.HasPrefix(d.Path, "../") || checkText("device path", d.Path) != nil:
		return fmt.Errorf("invalid device node path %q", d.Path)
	case d.Major >= 1<<12 || d.Minor >= 1<<20:
		return fmt.Errorf("device node %s: no such device number", d)
	}
	return nil
}

// ProcessSpec describes a plain process tree (migrate-src --pid).
type ProcessSpec struct {
	// Name labels the migration in logs and state: the command name.
	Name string `json:"name"`
}

var processNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$`)

func (p *ProcessSpec) Validate() error {
	if !processNamePattern.MatchString(p.Name) {
		return fmt.Errorf("invalid process name %q", p.Name)
	}
	return nil
}

// Sizes are the source's estimates, in bytes, of what a migration ships.
type Sizes struct {
	Memory  int64 `json:"memory"`         // the container's memory use: the CRIU images
	Rootfs  int64 `json:"rootfs"`         // its writable layer
	Volumes int64 `json:"volumes"`        // its named volumes
	Binds   int64 `json:"binds"`          // its copied bind mounts
	Image   int64 `json:"image"`          // its image, should it be sent
	Logs    int64 `json:"logs,omitempty"` // its log files (Preflight.Logs)
}

func (*Preflight) Type() transfer.MsgType { return MsgPreflight }

var migrationIDPattern = regexp.MustCompile(`^[0-9a-f]{16,64}$`)

func (m *Preflight) Validate() error {
	if !migrationIDPattern.MatchString(m.MigrationID) {
		return fmt.Errorf("invalid migration id %q", m.MigrationID)
	}
	if !slices.Contains(Strategies, m.Strategy) {
		return fmt.Errorf("unknown strategy %q", m.Strategy)
	}
	if m.Sizes.Memory < 0 || m.Sizes.Rootfs < 0 || m.Sizes.Volumes < 0 || m.Sizes.Binds < 0 || m.Sizes.Image < 0 || m.Sizes.Logs < 0 {
		return fmt.Errorf("negative size estimate %+v", m.Sizes)
	}
	switch m.Logs {
	case "", LogsJSONFile, LogsLocal:
	default:
		return fmt.Errorf("logs of driver %q", m.Logs)
	}
	if len(m.Devices) > MaxDeviceNodes {
		return fmt.Errorf("%d device nodes, limit %d", len(m.Devices), MaxDeviceNodes)
	}
	for _, d := range m.Devices {
		if err := d.Validate(); err != nil {
			return err
		}
	}
	if m.RemotePages && (m.Strategy != StrategyStopAndCopy || m.Process != nil) {
		return fmt.Errorf("remote pages are for a container's stop-and-copy, not this %s migration", m.Strategy)
	}
	if m.Process != nil {
		if len(m.ImageLayers) != 0 || len(m.Devices) != 0 || m.Logs != "" || m.Sizes.Image != 0 || m.Sizes.Rootfs != 0 || m.Sizes.Volumes != 0 || m.Sizes.Binds != 0 || m.Sizes.Logs != 0 {
			return errors.New("a process migration carries no image, file system or volumes")
		}
		return m.Process.Validate()
	}
	if err := checkList("image layer", m.ImageLayers, imageIDPattern); err != nil {
		return err
	}
	return m.Container.Validate()
}

// PreflightOK accepts a migration.
type PreflightOK struct {
	NeedImage  bool `json:"need_image"`  // send the image: the destination lacks it
	NewAddress bool `json:"new_address"` // the container gets a new address; connections close
	HaveLayers int  `json:"have_layers"` // leading image layers the destination has: not sent
	// Renumbered names the networks where the container gets a new
	// address (NewAddress); on the others it keeps its own.
	Renumbered []string `json:"renumbered,omitempty"`
	// RestoreMillis is how long the destination's last restore took (0:
	// none yet): the floor of the next freeze, for pre-copy's policy.
	RestoreMillis int64 `json:"restore_ms,omitempty"`
	// MemAvailable and DiskFree are the destination's available memory
	// and the free space where Docker keeps containers, before this
	// migration (0: unknown): a drain to several destinations chooses by
	// them.
	MemAvailable int64 `json:"mem_available,omitempty"`
	DiskFree     int64 `json:"disk_free,omitempty"`
}

func (*PreflightOK) Type() transfer.MsgType { return MsgPreflightOK }

func (m *PreflightOK) Validate() error {
	if m.HaveLayers < 0 || m.HaveLayers > maxSpecItems {
		return fmt.Errorf("have_layers %d", m.HaveLayers)
	}
	if len(m.Renumbered) > maxNetworks {
		return fmt.Errorf("%d renumbered networks", len(m.Renumbered))
	}
	if err := checkList("renumbered network", m.Renumbered, dockerNamePattern); err != nil {
		return err
	}
	if m.RestoreMillis < 0 || m.RestoreMillis > 3600_000 {
		return fmt.Errorf("restore_ms %d", m.RestoreMillis)
	}
	return nil
}

// PreRound announces pre-copy round Index on stream RoundStream(Index);
// with Done set, it says the rounds are over and Index of them were sent.
// Rounds are numbered from 1 without gaps.
type PreRound struct {
	Index int  `json:"index"`
	Done  bool `json:"done"`
}

func (*PreRound) Type() transfer.MsgType { return MsgPreRound }

func (m *PreRound) Validate() error {
	if m.Index < 0 || m.Index > MaxPreRounds || (m.Index == 0 && !m.Done) {
		return fmt.Errorf("pre-copy round %d (1 to %d)", m.Index, MaxPreRounds)
	}
	return nil
}

// Restore tells the destination that every stream has been stored.
type Restore struct{}

func (*Restore) Type() transfer.MsgType { return MsgRestore }
func (*Restore) Validate() error        { return nil }

// Restored reports that the container runs on the destination.
type Restored struct {
	ContainerID   string `json:"container_id"`  // "" for a process
	Pid           int    `json:"pid,omitempty"` // a process's new PID on the destination
	RestoreMillis int64  `json:"restore_ms"`    // docker start, including runc restore
	IPv4          string `json:"ipv4"`          // its address there ("" without a network)
	// CRIU's restore statistics.
	PagesRestored uint64 `json:"pages_restored"`
	ForkingMicros uint32 `json:"forking_us"`
	RestoreMicros uint32 `json:"restore_us"`
	// Steps are how the destination spent the freeze, in order, from its
	// last image received to this report.
	Steps []FreezeStep `json:"steps,omitempty"`
}

// FreezeStep is one step of a container's freeze.
type FreezeStep struct {
	Name   string `json:"name"`
	Micros int64  `json:"us"`
}

// MaxFreezeSteps bounds the destination's steps in Restored.
const MaxFreezeSteps = 16

var stepNamePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

func (*Restored) Type() transfer.MsgType { return MsgRestored }

var containerIDPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

func (m *Restored) Validate() error {
	process := m.ContainerID == "" && m.Pid > 0
	if (!process && !containerIDPattern.MatchString(m.ContainerID)) || m.Pid < 0 || m.RestoreMillis < 0 {
		return fmt.Errorf("invalid restored report %q", m.ContainerID)
	}
	if m.IPv4 != "" && net.ParseIP(m.IPv4).To4() == nil {
		return fmt.Errorf("invalid address %q", m.IPv4)
	}
	if len(m.Steps) > MaxFreezeSteps {
		return fmt.Errorf("%d freeze steps (limit %d)", len(m.Steps), MaxFreezeSteps)
	}
	for _, st := range m.Steps {
		if !stepNamePattern.MatchString(st.Name) || st.Micros < 0 || st.Micros > int64(time.Hour/time.Microsecond) {
			return fmt.Errorf("invalid freeze step %q (%d µs)", st.Name, st.Micros)
		}
	}
	return nil
}

// Commit tells the destination the original is gone: its copy is final.
type Commit struct{}

func (*Commit) Type() transfer.MsgType { return MsgCommit }
func (*Commit) Validate() error        { return nil }

// Done acknowledges Commit. After a post-copy it says what the
// destination's lazy-pages daemon did, when that daemon told.
type Done struct {
	PostCopy *PostCopyStats `json:"post_copy,omitempty"`
}

func (*Done) Type() transfer.MsgType { return MsgDone }

func (m *Done) Validate() error {
	if m.PostCopy == nil {
		return nil
	}
	return m.PostCopy.Validate()
}

// PostCopyStats is what a lazy-pages daemon did: the page faults the
// restored processes took and the pages it asked the source for.
type PostCopyStats struct {
	Faults          int64 `json:"faults"`
	Queued          int64 `json:"faults_queued"` // on a page already on its way
	Zero            int64 `json:"faults_zero"`   // on a page the dump did not hold
	FaultPages      int64 `json:"fault_pages"`   // pages asked for by faults (each with its neighbours)
	BackgroundPages int64 `json:"background_pages"`
}

func (s *PostCopyStats) Validate() error {
	if s.Faults < 0 || s.Queued < 0 || s.Zero < 0 || s.FaultPages < 0 || s.BackgroundPages < 0 || s.Queued+s.Zero > s.Faults {
		return fmt.Errorf("inconsistent post-copy statistics %+v", *s)
	}
	return nil
}

// Resolve, the first message of a session of its own, gives the outcome
// of a migration whose session broke after the destination reported its
// copy restored, before the commit arrived (the destination then holds the
// copy paused, in doubt): Commit says the original is gone, so the copy
// is final; otherwise the original runs on the source and the copy goes.
type Resolve struct {
	MigrationID string `json:"migration_id"`
	Commit      bool   `json:"commit"`
}

func (*Resolve) Type() transfer.MsgType { return MsgResolve }

func (m *Resolve) Validate() error {
	if !migrationIDPattern.MatchString(m.MigrationID) {
		return fmt.Errorf("invalid migration id %q", m.MigrationID)
	}
	return nil
}

// What a destination did with a Resolve.
const (
	OutcomeCommitted = "committed" // the copy runs and is final
	OutcomeRemoved   = "removed"   // the copy is gone
	OutcomePending   = "pending"   // the migration's session is still live here: ask again
	OutcomeUnknown   = "unknown"   // no such migration here (resolved before, or never seen)
)

// Outcome answers Resolve.
type Outcome struct {
	State string `json:"state"`
}

func (*Outcome) Type() transfer.MsgType { return MsgOutcome }

func (m *Outcome) Validate() error {
	switch m.State {
	case OutcomeCommitted, OutcomeRemoved, OutcomePending, OutcomeUnknown:
		return nil
	}
	return fmt.Errorf("unknown outcome %q", m.State)
}

// ContainerSpec is the configuration of the container to recreate, reduced
// to what dockmove knows how to move. Every field is validated on receipt.
type ContainerSpec struct {
	Name          string            `json:"name"`
	Image         string            `json:"image"`    // reference the user gave
	ImageID       string            `json:"image_id"` // sha256:...
	Hostname      string            `json:"hostname"`
	Domainname    string            `json:"domainname"`
	User          string            `json:"user"`
	WorkingDir    string            `json:"working_dir"`
	Env           []string          `json:"env"`
	Cmd           []string          `json:"cmd"`
	Entrypoint    []string          `json:"entrypoint"`
	Labels        map[string]string `json:"labels"`
	TTY           bool              `json:"tty"`
	OpenStdin     bool              `json:"open_stdin"`
	StopSignal    string            `json:"stop_signal"`
	ExposedPorts  []string          `json:"exposed_ports"` // "80/tcp"
	RestartPolicy string            `json:"restart_policy"`
	RestartMax    int               `json:"restart_max"`
	CapAdd        []string          `json:"cap_add"`
	CapDrop       []string          `json:"cap_drop"`
	// Networks are the container's networks in the order of its
	// interfaces (eth0's first); none: Docker's "none".
	Networks []NetworkSpec `json:"networks"`
	Volumes  []VolumeSpec  `json:"volumes"`
	Binds    []BindSpec    `json:"binds,omitempty"`
	// DockerConfig and DockerHostConfig are the container's whole creation
	// settings as the source's Docker reports them (its Config and
	// HostConfig, Docker's JSON), so that limits, healthchecks, DNS, log
	// options and settings of later Docker releases travel too. The
	// destination decides which of them it applies (a JSON object each, at
	// most 256 KiB).
	DockerConfig     json.RawMessage `json:"docker_config,omitempty"`
	DockerHostConfig json.RawMessage `json:"docker_host_config,omitempty"`
	// InitBinary describes the docker-init the container runs as its PID
	// 1 (--init), which the source sends on StreamInit before the freeze:
	// the restored process maps that very file, and another Docker's
	// docker-init differs (CRIU refuses a mapped file of another size).
	InitBinary *FileDigest `json:"init_binary,omitempty"`
}

// FileDigest identifies a file's content.
type FileDigest struct {
	SHA256 string `json:"sha256"` // hex
	Size   int64  `json:"size"`
}

var sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// runsInit reports whether Docker settings say --init.
func runsInit(hostConfig json.RawMessage) bool {
	var h struct{ Init *bool }
	return len(hostConfig) > 0 && json.Unmarshal(hostConfig, &h) == nil && h.Init != nil && *h.Init
}

// validateInit checks that an --init container comes with its docker-init
// and only such a container does.
func (c *ContainerSpec) validateInit() error {
	init := runsInit(c.DockerHostConfig)
	switch {
	case init && c.InitBinary == nil:
		return errors.New("the container runs docker-init (--init) but the source does not send it (a migrate-src older than the destination's: upgrade it)")
	case !init && c.InitBinary != nil:
		return errors.New("a docker-init is announced for a container that does not run one")
	case c.InitBinary == nil:
		return nil
	case !sha256Pattern.MatchString(c.InitBinary.SHA256):
		return fmt.Errorf("invalid docker-init digest %q", c.InitBinary.SHA256)
	case c.InitBinary.Size <= 0 || c.InitBinary.Size > MaxInitBinary:
		return fmt.Errorf("docker-init of %d bytes (limit %d)", c.InitBinary.Size, MaxInitBinary)
	}
	return nil
}

// maxDockerSettings bounds each of DockerConfig and DockerHostConfig.
const maxDockerSettings = 256 << 10

// checkJSONObject accepts nothing or one JSON object within the bound.
func checkJSONObject(what string, raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	if len(raw) > maxDockerSettings {
		return fmt.Errorf("%s of %d bytes, limit %d", what, len(raw), maxDockerSettings)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("%s is not a JSON object: %v", what, err)
	}
	return nil
}

// NetworkSpec is one of the container's networks and its identity on it.
type NetworkSpec struct {
	Name    string   `json:"name"`
	Subnet  string   `json:"subnet"`
	IPv4    string   `json:"ipv4"`
	MAC     string   `json:"mac"`
	Aliases []string `json:"aliases"`
	// IPv6 is its global IPv6 address on a dual-stack network ("": none).
	IPv6 string `json:"ipv6,omitempty"`
	// Interface is the name of the container's interface on the network
	// as its processes see it (eth0, eth1, ...); "" when unknown.
	Interface string `json:"interface,omitempty"`
	// GwPriority is the endpoint's say in which network gives the
	// container its default route (Docker 28, API 1.48).
	GwPriority int `json:"gw_priority,omitempty"`
	// Definition is how the source's Docker defines the network, for a
	// destination that lacks it (Preflight.CreateNetworks).
	Definition *NetworkDefinition `json:"definition,omitempty"`
}

// NetworkDefinition is a Docker network's definition: its driver, its IPv4
// pool and the driver's options.
type NetworkDefinition struct {
	Driver  string `json:"driver"`
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway,omitempty"`
	IPRange string `json:"ip_range,omitempty"`
	// The IPv6 pool of a dual-stack network.
	Subnet6  string            `json:"subnet6,omitempty"`
	Gateway6 string            `json:"gateway6,omitempty"`
	IPRange6 string            `json:"ip_range6,omitempty"`
	Options  map[string]string `json:"options,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Internal bool              `json:"internal,omitempty"`
}

var driverPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// Validate checks a definition's form; what the destination accepts is its
// own policy.
func (d *NetworkDefinition) Validate() error {
	if !driverPattern.MatchString(d.Driver) {
		return fmt.Errorf("invalid network driver %q", d.Driver)
	}
	if err := checkPool(d.Subnet, d.Gateway, d.IPRange, true); err != nil {
		return err
	}
	if d.Subnet6 != "" || d.Gateway6 != "" || d.IPRange6 != "" {
		if err := checkPool(d.Subnet6, d.Gateway6, d.IPRange6, false); err != nil {
			return err
		}
	}
	for what, m := range map[string]map[string]string{"network option": d.Options, "network label": d.Labels} {
		if len(m) > 64 {
			return fmt.Errorf("%d %ss", len(m), what)
		}
		for k, v := range m {
			if k == "" || checkText(what, k+v) != nil {
				return fmt.Errorf("invalid %s %q", what, k)
			}
		}
	}
	return nil
}

// checkPool checks an address pool of one family (v4): its subnet, and a
// gateway and allocation range inside it.
func checkPool(subnet, gateway, ipRange string, v4 bool) error {
	_, sub, err := net.ParseCIDR(subnet)
	if err != nil || (sub.IP.To4() != nil) != v4 {
		return fmt.Errorf("invalid network subnet %q", subnet)
	}
	if gateway != "" {
		if ip := net.ParseIP(gateway); ip == nil || !sub.Contains(ip) {
			return fmt.Errorf("invalid gateway %q for subnet %s", gateway, subnet)
		}
	}
	if ipRange != "" && !Within(ipRange, subnet) {
		return fmt.Errorf("invalid IP range %q for subnet %s", ipRange, subnet)
	}
	return nil
}

// Within reports whether CIDR inner lies wholly inside CIDR outer.
func Within(inner, outer string) bool {
	ip, in, err := net.ParseCIDR(inner)
	_, out, err2 := net.ParseCIDR(outer)
	if err != nil || err2 != nil {
		return false
	}
	ones, bits := in.Mask.Size()
	outOnes, outBits := out.Mask.Size()
	return bits == outBits && ones >= outOnes && out.Contains(ip)
}

// maxNetworks bounds the networks of one container.
const maxNetworks = 32

// VolumeSpec is a named local volume and where it is mounted.
type VolumeSpec struct {
	Name        string `json:"name"`
	Destination string `json:"destination"`
	ReadOnly    bool   `json:"read_only"`
	// Anonymous: Docker made it for the container (`-v /path`, an image's
	// VOLUME); it belongs to the container and goes with it.
	Anonymous bool `json:"anonymous,omitempty"`
}

// BindMode is how a bind mount of a host path moves (migrate-src
// --bind-mounts).
type BindMode string

const (
	// BindCopy ships the directory's contents, at the freeze, to the same
	// path on the destination, which must not hold anything there.
	BindCopy BindMode = "copy"
	// BindShared declares that the destination sees the same path on
	// shared storage; a marker the source writes there proves it.
	BindShared BindMode = "shared"
)

// BindSpec is a bind mount of a host path: Source on the host, Destination
// in the container.
type BindSpec struct {
	Source      string   `json:"source"`
	Destination string   `json:"destination"`
	ReadOnly    bool     `json:"read_only"`
	Mode        BindMode `json:"mode"`
	// Marker (shared binds) is a file the source wrote in Source for this
	// migration, named and filled with Marker: the destination reads it
	// through its own Source.
	Marker string `json:"marker,omitempty"`
}

var markerPattern = regexp.MustCompile(`^\.dockmove-shared-[0-9a-f]{32}$`)

// Validate checks a bind mount: absolute, clean paths a bind string can
// carry, a known mode, and a marker for a shared one.
func (b *BindSpec) Validate() error {
	for what, p := range map[string]string{"source": b.Source, "destination": b.Destination} {
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" || strings.ContainsAny(p, ":,") || checkText(what, p) != nil {
			return fmt.Errorf("invalid bind mount %s %q", what, p)
		}
	}
	switch b.Mode {
	case BindCopy:
		if b.Marker != "" {
			return fmt.Errorf("bind mount %s: a marker for a copied bind", b.Source)
		}
	case BindShared:
		if !markerPattern.MatchString(b.Marker) {
			return fmt.Errorf("bind mount %s: invalid marker %q", b.Source, b.Marker)
		}
	default:
		return fmt.Errorf("bind mount %s: unknown mode %q", b.Source, b.Mode)
	}
	return nil
}

// Limits on what a peer may send in a ContainerSpec.
const (
	maxSpecItems = 1024
	maxSpecText  = 64 << 10
)

var (
	dockerNamePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)
	imageIDPattern    = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	portPattern       = regexp.MustCompile(`^[0-9]{1,5}/(tcp|udp|sctp)$`)
	capPattern        = regexp.MustCompile(`^(CAP_)?[A-Z_]{2,32}$|^ALL$`)
)

// Validate checks every field a destination will hand to Docker.
func (c *ContainerSpec) Validate() error {
	if !dockerNamePattern.MatchString(c.Name) {
		return fmt.Errorf("invalid container name %q", c.Name)
	}
	if !imageIDPattern.MatchString(c.ImageID) {
		return fmt.Errorf("invalid image id %q", c.ImageID)
	}
	for what, s := range map[string]string{"image": c.Image, "hostname": c.Hostname, "domainname": c.Domainname, "user": c.User, "working dir": c.WorkingDir, "stop signal": c.StopSignal} {
		if err := checkText(what, s); err != nil {
			return err
		}
	}
	if c.WorkingDir != "" && !path.IsAbs(c.WorkingDir) {
		return fmt.Errorf("working dir %q is not absolute", c.WorkingDir)
	}
	for what, list := range map[string][]string{"env": c.Env, "cmd": c.Cmd, "entrypoint": c.Entrypoint} {
		if err := checkList(what, list, nil); err != nil {
			return err
		}
	}
	if err := checkList("exposed port", c.ExposedPorts, portPattern); err != nil {
		return err
	}
	if err := checkList("capability", append(append([]string(nil), c.CapAdd...), c.CapDrop...), capPattern); err != nil {
		return err
	}
	if len(c.Labels) > maxSpecItems {
		return fmt.Errorf("%d labels", len(c.Labels))
	}
	for k, v := range c.Labels {
		if err := checkText("label", k+v); err != nil {
			return err
		}
	}
	switch c.RestartPolicy {
	case "", "no", "always", "unless-stopped", "on-failure":
	default:
		return fmt.Errorf("unknown restart policy %q", c.RestartPolicy)
	}
	if c.RestartMax < 0 {
		return fmt.Errorf("restart count %d", c.RestartMax)
	}
	if err := validateNetworks(c.Networks); err != nil {
		return err
	}
	if len(c.Volumes) > 64 {
		return fmt.Errorf("%d volumes", len(c.Volumes))
	}
	if err := checkJSONObject("docker config", c.DockerConfig); err != nil {
		return err
	}
	if err := checkJSONObject("docker host config", c.DockerHostConfig); err != nil {
		return err
	}
	if err := c.validateInit(); err != nil {
		return err
	}
	for _, v := range c.Volumes {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	if len(c.Binds) > 64 {
		return fmt.Errorf("%d bind mounts", len(c.Binds))
	}
	for _, b := range c.Binds {
		if err := b.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// validateNetworks checks each network and that no network or interface
// name comes twice.
func validateNetworks(list []NetworkSpec) error {
	if len(list) > maxNetworks {
		return fmt.Errorf("%d networks, limit %d", len(list), maxNetworks)
	}
	names, ifaces := map[string]bool{}, map[string]bool{}
	for i := range list {
		n := &list[i]
		if err := n.Validate(); err != nil {
			return err
		}
		if names[n.Name] {
			return fmt.Errorf("network %q listed twice", n.Name)
		}
		if n.Interface != "" && ifaces[n.Interface] {
			return fmt.Errorf("interface %q named for two networks", n.Interface)
		}
		names[n.Name], ifaces[n.Interface] = true, true
	}
	return nil
}

// ifacePattern is an interface name Linux takes (IFNAMSIZ: 15 bytes).
var ifacePattern = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]{0,14}$`)

// Validate checks a network identity.
func (n *NetworkSpec) Validate() error {
	if !dockerNamePattern.MatchString(n.Name) {
		return fmt.Errorf("invalid network name %q", n.Name)
	}
	if n.Name == "host" || n.Name == "none" {
		// Docker's network modes, not networks: "host" would give the
		// container the destination's own network stack.
		return fmt.Errorf("network %q is a network mode, not a network a container can be moved onto", n.Name)
	}
	_, subnet, err := net.ParseCIDR(n.Subnet)
	if err != nil {
		return fmt.Errorf("invalid subnet %q", n.Subnet)
	}
	ip := net.ParseIP(n.IPv4)
	if ip == nil || ip.To4() == nil || !subnet.Contains(ip) {
		return fmt.Errorf("invalid address %q for subnet %s", n.IPv4, n.Subnet)
	}
	if _, err := net.ParseMAC(n.MAC); err != nil {
		return fmt.Errorf("invalid MAC %q", n.MAC)
	}
	if n.IPv6 != "" {
		if ip := net.ParseIP(n.IPv6); ip == nil || ip.To4() != nil || !ip.IsGlobalUnicast() {
			return fmt.Errorf("network %q: invalid IPv6 address %q", n.Name, n.IPv6)
		}
	}
	if n.Interface != "" && !ifacePattern.MatchString(n.Interface) {
		return fmt.Errorf("network %q: invalid interface name %q", n.Name, n.Interface)
	}
	if d := n.Definition; d != nil {
		if err := d.Validate(); err != nil {
			return fmt.Errorf("network %q: %w", n.Name, err)
		}
		if d.Subnet != n.Subnet {
			return fmt.Errorf("network %q: defined with subnet %s, not %s", n.Name, d.Subnet, n.Subnet)
		}
	}
	return checkList("alias", n.Aliases, dockerNamePattern)
}

// Validate checks a volume.
func (v *VolumeSpec) Validate() error {
	if !dockerNamePattern.MatchString(v.Name) {
		return fmt.Errorf("invalid volume name %q", v.Name)
	}
	// ':' and ',' would turn the rest into a bind's mode ("/data:rw,z").
	if !path.IsAbs(v.Destination) || path.Clean(v.Destination) != v.Destination || v.Destination == "/" || strings.ContainsAny(v.Destination, ":,") {
		return fmt.Errorf("invalid volume destination %q", v.Destination)
	}
	return checkText("volume destination", v.Destination)
}

func checkText(what, s string) error {
	if len(s) > maxSpecText || strings.ContainsRune(s, 0) {
		return fmt.Errorf("invalid %s", what)
	}
	return nil
}

func checkList(what string, list []string, pattern *regexp.Regexp) error {
	if len(list) > maxSpecItems {
		return fmt.Errorf("%d %s entries", len(list), what)
	}
	for _, s := range list {
		if err := checkText(what, s); err != nil {
			return err
		}
		if pattern != nil && !pattern.MatchString(s) {
			return fmt.Errorf("invalid %s %q", what, s)
		}
	}
	return nil
}
