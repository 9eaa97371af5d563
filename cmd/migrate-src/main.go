//go:debug multipathtcp=0

//go:build linux

// Command migrate-src moves a running Docker container, or a plain process
// tree, to another host running migrate-dst:
//
//	migrate-src --to HOST[:PORT] [flags] CONTAINER
//	migrate-src --to HOST[:PORT] [flags] --pid PID
//	migrate-src check|drain|status|install-plugin|generate|help ...
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/pflag"

	"github.com/dockmove/dockmove/internal/cli"
	"github.com/dockmove/dockmove/internal/criu"
	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/internal/events"
	"github.com/dockmove/dockmove/internal/reserve"
	"github.com/dockmove/dockmove/migrate"
	"github.com/dockmove/dockmove/predump"
	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run runs the command line args (args[0] is the name migrate-src was run
// as: docker-migrate for the Docker CLI plugin) and returns the exit
// status: 0; 1 for a failure; 2 for a command line it cannot run; 3 for
// status with unresolved migrations.
func run(args []string, stdout, stderr io.Writer) int {
	argv := args[1:]
	if len(argv) == 1 && argv[0] == reserve.HoldArg {
		// In a reservation container (package reserve).
		return reserve.Hold()
	}
	a := &app{help: helpFor("migrate-src"), stdout: stdout, stderr: stderr}
	if filepath.Base(args[0]) == pluginName {
		// Run by the Docker CLI as `docker migrate ...`.
		if len(argv) == 1 && argv[0] == "docker-cli-plugin-metadata" {
			pluginMetadata(stdout)
			return 0
		}
		var err error
		if argv, err = pluginCommandLine(argv); err != nil {
			fmt.Fprintln(stderr, "docker migrate:", err)
			return 2
		}
		a.help = helpFor("docker migrate")
	}
	return a.run(argv)
}

// app is one run of migrate-src: its help and where it writes.
type app struct {
	help           cli.Help
	stdout, stderr io.Writer
}

// run runs migrate-src's command line, after the program's name.
func (a *app) run(argv []string) int {
	if len(argv) > 0 && argv[0] == "install-plugin" {
		return a.help.Exit(a.stderr, a.runInstallPlugin(argv[1:]))
	}
	if len(argv) > 0 && argv[0] == "generate" {
		return a.help.Exit(a.stderr, a.generate(argv[1:]))
	}
	o := newOptions()
	fs := o.flagSet()
	if err := cli.ParseFlags(fs, "", argv); err != nil {
		return a.parseFailed(fs, err)
	}
	args := fs.Args()
	switch {
	case o.guard:
		return runGuard(o.cfg.WorkDir, &o.tf, a.stderr)
	case o.version:
		fmt.Fprintln(a.stdout, cli.Version(a.help.Program, migrate.Version))
		return 0
	case len(args) == 1 && args[0] == "status" && o.cfg.To == "":
		return a.status(o)
	case len(args) == 1 && args[0] == "reservations" && o.cfg.To == "":
		return a.reservations(o)
	case len(args) > 0 && args[0] == "help" && o.cfg.To == "":
		return a.helpCommand(args[1:])
	case len(argv) == 0:
		a.help.Write(a.stderr, "", fs)
		return 2
	}
	name, drain := "", len(args) > 0 && args[0] == "drain"
	if drain {
		name, args = "drain", args[1:]
	}
	if len(args) > 0 && args[0] == "check" {
		o.cfg.DryRun, args = true, args[1:]
		if !drain {
			name = "check"
		}
	}
	if name == "check" && o.cfg.Pid == 0 && (len(args) > 1 || len(args) == 1 && strings.ContainsAny(args[0], `*?[\`)) {
		// Several containers checked (or a pattern): drain's check of those.
		drain, o.names, args = true, args, nil
	}
	cfg, err := o.config(name, drain, args)
	if err != nil {
		return a.help.Exit(a.stderr, err)
	}
	return a.migrate(o, cfg, drain)
}

// parseFailed answers a command line pflag did not take: the help of the
// command its arguments so far name, for --help; else the error.
func (a *app) parseFailed(fs *pflag.FlagSet, err error) int {
	name := a.commandOf(fs.Args())
	if errors.Is(err, pflag.ErrHelp) {
		if name == "help" {
			fs = nil // help has no flags of its own
		}
		a.help.Write(a.stdout, name, fs)
		return 0
	}
	var usage *cli.UsageError
	if errors.As(err, &usage) {
		usage.Command = name
	}
	return a.help.Exit(a.stderr, err)
}

// commandOf returns the command that a command line's arguments name; ""
// for the default, a migration.
func (a *app) commandOf(args []string) string {
	if len(args) == 0 || args[0] == "" {
		return ""
	}
	if _, ok := a.help.Lookup(args[0]); !ok {
		return ""
	}
	return args[0]
}

// helpCommand writes the help of the command args name, or migrate-src's.
func (a *app) helpCommand(args []string) int {
	switch {
	case len(args) == 0:
		return a.run([]string{"--help"})
	case len(args) > 1:
		return a.help.Exit(a.stderr, cli.Usagef("help", "unexpected argument %q", args[1]))
	case a.commandOf(args) == "":
		return a.help.Exit(a.stderr, cli.Usagef("", "unknown command %q", args[0]))
	}
	return a.run([]string{args[0], "--help"})
}

// options are migrate-src's flags: the source's configuration and what
// the command line adds to it.
type options struct {
	cfg               migrate.SourceConfig
	tf                cli.TransferFlags
	allowDestinations []string
	strategy, policy  string
	ghostLimit        string
	bindMounts        string
	labels            []string
	names             []string // drain: the containers' names or patterns
	drainTo           []string // drain: every destination, --to's list
	parallel          int
	eventsPath        string
	asJSON, verbose   bool
	guard, resolve    bool
	prune             bool
	version           bool
}

// newOptions returns the options before the command line: the source's
// defaults.
func newOptions() *options {
	cfg := migrate.DefaultSourceConfig()
	return &options{cfg: cfg, strategy: string(cfg.Strategy), policy: string(cfg.PrecopyPolicy), ghostLimit: "64MiB"}
}

// flagSet returns the flags that set o: those of a migration, check,
// drain and status alike.
func (o *options) flagSet() *pflag.FlagSet {
	cfg := &o.cfg
	fs := pflag.NewFlagSet("migrate-src", pflag.ContinueOnError)
	fs.StringVar(&cfg.To, "to", "", "destination migrate-dst, HOST[:PORT] (default port 7070); drain: several, comma-separated, each container going to the one with the most memory to spare")
	fs.StringSliceVar(&o.allowDestinations, "allow-destination", nil, "send only to these hosts (names or addresses in their certificates; comma-separated or repeated); default: any host whose certificate the CA signed and names the --to address")
	fs.StringVar(&cfg.Docker, "docker-host", "", "local dockerd (default: DOCKER_HOST or the default socket)")
	fs.StringVar(&o.strategy, "strategy", o.strategy, "migration strategy: stop-and-copy, lazy (post-copy), precopy (pre-dump rounds while running), "+
		"hybrid (pre-dump rounds, then post-copy) or auto (hybrid, lazy, precopy or stop-and-copy: the first the kernels allow)")
	fs.StringVar(&o.policy, "precopy-policy", o.policy, "when pre-dump rounds stop: adaptive (predicted freeze fits --max-freeze, or no progress), phaul or lxd (those tools' rules)")
	fs.StringVar(&o.ghostLimit, "ghost-limit", o.ghostLimit, "largest deleted-but-open file that moves with its process (CRIU copies it into the images); a larger one is refused before freezing")
	fs.DurationVar(&cfg.DumpTimeout, "dump-timeout", cfg.DumpTimeout, "longest CRIU's dump may keep the container frozen before it is stopped and the container resumed")
	fs.IntVar(&cfg.PrecopyLimits.MaxRounds, "max-rounds", cfg.PrecopyLimits.MaxRounds, "at most this many pre-dump rounds")
	fs.DurationVar(&cfg.PrecopyLimits.MaxFreeze, "max-freeze", cfg.PrecopyLimits.MaxFreeze, "adaptive policy: stop the rounds once the predicted freeze fits this")
	fs.DurationVar(&cfg.PrecopyLimits.RestoreFloor, "restore-floor", cfg.PrecopyLimits.RestoreFloor, "adaptive policy: the destination's fixed restore time, added to the predicted freeze, until the destination reports its own last restore time")
	fs.IntVar(&cfg.Pid, "pid", 0, "move the plain process tree rooted at PID instead of a container (best the init of its own PID namespace; the destination needs --allow-processes)")
	fs.BoolVar(&cfg.KeepSource, "keep-source", false, "keep the stopped original container instead of removing it")
	fs.BoolVar(&cfg.LocalPages, "local-pages", false, "stop-and-copy: dump the memory here and ship it after the dump, instead of sending it to the destination as it is dumped")
	fs.BoolVar(&cfg.AllowNewAddress, "allow-new-address", false, "if the destination cannot keep the container's IP/MAC, accept a new address (its TCP connections are closed)")
	fs.BoolVar(&cfg.CreateNetworks, "create-networks", false, "ask the destination to create, from this host's definitions, the container's networks it lacks (where it allows: migrate-dst --allow-create-networks)")
	fs.StringVar(&o.bindMounts, "bind-mounts", "", "move bind mounts of host paths: copy (their contents, at the freeze, below a base directory the destination allows: migrate-dst --bind-base) or shared (the destination sees the same paths on shared storage, checked before freezing); default: refused")
	fs.StringToStringVar(&cfg.RemapPorts, "remap-port", nil, "publish a host port elsewhere on the destination: [IP:]PORT=[IP:]OTHER (repeat); default the same ports")
	fs.StringVar(&cfg.WorkDir, "work-dir", cfg.WorkDir, "where the dump is written while it is shipped")
	fs.StringVar(&cfg.CRIU, "criu", "", "criu binary (default: criu in PATH)")
	fs.BoolVar(&o.asJSON, "json", false, "print the report as JSON on stdout")
	fs.StringArrayVar(&o.labels, "label", nil, "drain: only the containers with this label, KEY or KEY=VALUE (repeat)")
	fs.StringArrayVar(&o.names, "name", nil, "drain: only the containers of this name, or matching this pattern (web-*) (repeat)")
	fs.IntVar(&o.parallel, "parallel", 1, "drain: move this many containers at once (default 1: their freezes never overlap)")
	fs.StringVar(&o.eventsPath, "events", "", "write the migration's events (stages, the outcome) as JSON lines to this file (e.g. /dev/fd/3)")
	fs.BoolVar(&o.resolve, "resolve", false, "with status: deliver every commit its destination has not confirmed")
	fs.BoolVar(&o.prune, "prune", false, "with reservations: remove those whose addresses nobody answers for on their network any more")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "log details to stderr")
	fs.BoolVar(&o.version, "version", false, "print migrate-src's version and exit")
	fs.BoolVar(&o.guard, migrate.GuardFlag, false, "run as a migration's guard (started by migrate-src itself)")
	fs.MarkHidden(migrate.GuardFlag)
	fs.StringVar(&cfg.PauseAt, "pause-at", "", "fault-injection tests: pause on entering this stage")
	fs.DurationVar(&cfg.PauseFor, "pause-for", time.Minute, "fault-injection tests: how long --pause-at pauses")
	fs.MarkHidden("pause-at")
	fs.MarkHidden("pause-for")
	o.tf.Register(fs)
	return fs
}

// config builds the source's configuration from the flags and the
// arguments of the command name: a container, or none for drain or --pid.
func (o *options) config(name string, drain bool, args []string) (migrate.SourceConfig, error) {
	cfg := o.cfg
	if err := o.checkTarget(name, drain, args); err != nil {
		return cfg, err
	}
	if !drain && cfg.Pid == 0 {
		cfg.Container = args[0]
	}
	n, err := units.RAMInBytes(o.ghostLimit)
	if err != nil {
		return cfg, cli.Usagef(name, "--ghost-limit %q: %v", o.ghostLimit, err)
	}
	cfg.GhostLimit = n
	cfg.BindMounts = protocol.BindMode(o.bindMounts)
	if cfg.Strategy, err = protocol.ParseStrategy(o.strategy); err != nil {
		return cfg, cli.Usagef(name, "--strategy: %v", err)
	}
	if cfg.PrecopyPolicy, err = predump.ParsePolicy(o.policy); err != nil {
		return cfg, cli.Usagef(name, "--precopy-policy: %v", err)
	}
	o.drainTo = nil
	for _, to := range strings.Split(cfg.To, ",") {
		if to == "" {
			return cfg, cli.Usagef(name, "--to %q: an empty destination", cfg.To)
		}
		if _, _, err := net.SplitHostPort(to); err != nil {
			to = net.JoinHostPort(to, "7070")
		}
		o.drainTo = append(o.drainTo, to)
	}
	switch {
	case len(o.drainTo) > 1 && !drain:
		return cfg, cli.Usagef(name, "--to %q: one destination (drain takes several)", cfg.To)
	case o.parallel < 1:
		return cfg, cli.Usagef(name, "--parallel %d: at least 1", o.parallel)
	}
	cfg.To = o.drainTo[0]
	return cfg, nil
}

// checkTarget says what is wrong with what the command line asks to move:
// one container, or with --pid none, or with drain none and no --pid; and
// a destination.
func (o *options) checkTarget(name string, drain bool, args []string) error {
	switch {
	case o.cfg.To == "":
		return cli.Usagef(name, "no destination: --to HOST[:PORT]")
	case drain && o.cfg.Pid != 0:
		return cli.Usagef(name, "drain moves containers, not --pid")
	case drain && len(args) > 0:
		return cli.Usagef(name, "unexpected argument %q: drain moves every running container (--label chooses some)", args[0])
	case o.cfg.Pid != 0 && len(args) > 0:
		return cli.Usagef(name, "a container or --pid, not both")
	case !drain && o.cfg.Pid == 0 && len(args) == 0:
		return cli.Usagef(name, "no container to move (or --pid PID)")
	case len(args) > 1:
		return cli.Usagef(name, "one container at a time, not %q (check takes several; drain moves them all)", args)
	}
	return nil
}

// migrate moves (or checks, or drains) with cfg and says how it went.
func (a *app) migrate(o *options, cfg migrate.SourceConfig, drain bool) int {
	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	cfg.Logger = log
	var err error
	if cfg.GuardBinary, err = os.Executable(); err != nil {
		fmt.Fprintln(a.stderr, "migrate-src:", err)
		return 1
	}
	cfg.GuardArgs = o.tf.Args()
	if cfg.Transfer, err = o.tf.Config(false, log); err != nil {
		fmt.Fprintln(a.stderr, "migrate-src:", err)
		return 1
	}
	cfg.Transfer.AllowPeers = o.allowDestinations
	if f, ok := a.stderr.(*os.File); ok && o.parallel == 1 {
		if p := cli.NewProgress(f); p != nil {
			cfg.Transfer.Progress = p.Update
		}
	}
	ev, err := events.Open(o.eventsPath)
	if err != nil {
		fmt.Fprintln(a.stderr, "migrate-src:", err)
		return 1
	}
	defer ev.Close()
	start := time.Now()
	cfg.OnStage = func(st migrate.Stage) {
		who := ""
		if drain {
			who = st.Container + ": "
		}
		fmt.Fprintf(a.stderr, "[%6.2fs] %s%s%s\n", time.Since(start).Seconds(), who, st.Name, st.Detail)
		ev.Stage(st.Name, st.Detail, st.MigrationID)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if drain {
		return a.drain(ctx, cfg, migrate.DrainOptions{Labels: o.labels, Names: o.names, To: o.drainTo, Parallel: o.parallel}, o.asJSON)
	}
	report, err := migrate.Migrate(ctx, cfg)
	ev.End(err)
	return a.report(cfg, report, err, o.asJSON)
}

// report says how a migration or a check went and returns the exit status.
func (a *app) report(cfg migrate.SourceConfig, report *migrate.Report, err error, asJSON bool) int {
	if asJSON && report != nil {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(report)
	}
	what := cfg.Container
	if cfg.Pid != 0 {
		what = fmt.Sprintf("process %d", cfg.Pid)
	}
	if err != nil {
		if cfg.DryRun {
			fmt.Fprintf(a.stderr, "migrate-src: %s would not move to %s: %v\n", what, cfg.To, err)
			return 1
		}
		fmt.Fprintf(a.stderr, "migrate-src: %s was not migrated: %v\n", what, err)
		return 1
	}
	if cfg.DryRun {
		if !asJSON {
			a.printCheck(what, report)
		}
		return 0
	}
	a.printSummary(report)
	return 0
}

// printCheck says what a migration would do, from a dry run's report.
func (a *app) printCheck(what string, r *migrate.Report) {
	c := r.Check
	fmt.Fprintf(a.stdout, "%s would move to %s (%s, nothing was frozen or made there)\n", what, r.Destination, r.Hosts.Destination)
	fmt.Fprintf(a.stdout, "  strategy %s: %s\n", r.Strategy, r.StrategyReason)
	fmt.Fprintf(a.stdout, "  to ship: memory %s, writable layer %s, volumes %s\n", cli.Size(c.Sizes.Memory), cli.Size(c.Sizes.Rootfs), cli.Size(c.Sizes.Volumes))
	switch {
	case c.NeedImage && c.HaveLayers > 0:
		fmt.Fprintf(a.stdout, "  image: %s has %d of its %d layers; the rest is sent (at most %s)\n", r.Destination, c.HaveLayers, c.ImageLayers, cli.Size(c.Sizes.Image))
	case c.NeedImage:
		fmt.Fprintf(a.stdout, "  image: sent whole (%s)\n", cli.Size(c.Sizes.Image))
	case c.ImageLayers > 0:
		fmt.Fprintf(a.stdout, "  image: present on %s\n", r.Destination)
	}
	if c.NewAddress {
		fmt.Fprintln(a.stdout, "  address: a new one on host2 (its TCP connections will be closed)")
	}
	if c.LastRestore > 0 {
		fmt.Fprintf(a.stdout, "  %s's last restore took %v (the floor of the freeze)\n", r.Destination, c.LastRestore)
	}
	if len(c.Predicted) > 0 {
		fmt.Fprintln(a.stdout, "  predicted freeze:")
	}
	for _, p := range c.Predicted {
		switch {
		case p.Unavailable != "":
			fmt.Fprintf(a.stdout, "    %-14s not possible here: %s\n", p.Strategy, p.Unavailable)
		case p.Freeze == 0:
			fmt.Fprintf(a.stdout, "    %-14s unknown: %s\n", p.Strategy, p.Basis)
		default:
			fmt.Fprintf(a.stdout, "    %-14s %6.2fs  (%s)\n", p.Strategy, p.Freeze.Seconds(), p.Basis)
		}
	}
}

// status shows the commits whose destination has not confirmed them and
// what guards did after an interrupted migrate-src; with resolve, it
// delivers those commits.
func (a *app) status(o *options) int {
	workDir := o.cfg.WorkDir
	log := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pending, err := migrate.PendingOutcomes(workDir)
	if err != nil {
		fmt.Fprintln(a.stderr, "migrate-src:", err)
		return 1
	}
	var said map[string]string
	if o.resolve && len(pending) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		tc, err := o.tf.Config(false, log)
		var caps criu.Capabilities
		if err == nil {
			caps, err = criu.Probe(ctx, o.cfg.CRIU)
		}
		if err == nil {
			tc.Hello = transfer.Hello{Role: transfer.RoleSource, Agent: migrate.Version, CRIU: transfer.CRIUInfo{Version: caps.Version}}
			said, err = migrate.ResolvePending(ctx, workDir, tc, log)
		}
		cancel()
		if err != nil {
			fmt.Fprintln(a.stderr, "migrate-src: resolve:", err)
		}
		pending, _ = migrate.PendingOutcomes(workDir)
	}
	guards := migrate.GuardResults(workDir)
	reservations, err := listReservations(o.cfg.Docker)
	if err != nil {
		fmt.Fprintln(a.stderr, "migrate-src: reservations:", err)
	}
	if o.asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(map[string]any{"unresolved": pending, "resolved": said, "guards": guards, "reservations": reservations})
	} else {
		a.printStatus(pending, said, guards)
		for _, r := range reservations {
			fmt.Fprintf(a.stdout, "reserved: %s on %s (container %s) for a container that moved away; `migrate-src reservations --prune` removes it once that container is gone\n",
				addresses(r), r.Network, reserve.Name(r.Network, r.IPv4))
		}
	}
	if len(pending) > 0 {
		return 3
	}
	return 0
}

// reservations lists this host's reservations with who answers for their
// addresses on the network now; with --prune, those nobody answers for go.
// It fails (1) if an address could not be probed or a reservation removed.
func (a *app) reservations(o *options) int {
	dk, err := docker.New(o.cfg.Docker)
	if err != nil {
		fmt.Fprintln(a.stderr, "migrate-src: reservations:", err)
		return 1
	}
	defer dk.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fates, err := migrate.PruneReservations(ctx, dk, !o.prune)
	if err != nil {
		fmt.Fprintln(a.stderr, "migrate-src: reservations:", err)
		return 1
	}
	code := 0
	if o.asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(fates)
	}
	for _, f := range fates {
		what := fmt.Sprintf("%s on %s (container %s)", addresses(f.Reservation), f.Network, reserve.Name(f.Network, f.IPv4))
		var line string
		switch {
		case f.Error != "":
			line, code = fmt.Sprintf("%s: kept, its addresses could not be probed: %s", what, f.Error), 1
		case len(f.AnsweredBy) > 0:
			line = fmt.Sprintf("%s: in use, answered by %s: kept", what, strings.Join(f.AnsweredBy, ", "))
		case f.Removed:
			line = fmt.Sprintf("%s: nobody answers for it: removed, the address is free again", what)
		default:
			line = fmt.Sprintf("%s: nobody answers for it (the container that moved away is gone or stopped): `migrate-src reservations --prune` removes it", what)
		}
		if o.asJSON {
			fmt.Fprintln(a.stderr, line)
		} else {
			fmt.Fprintln(a.stdout, line)
		}
	}
	if len(fates) == 0 && !o.asJSON {
		fmt.Fprintln(a.stdout, "no reservations on this host")
	}
	return code
}

// addresses names the addresses reservation r holds.
func addresses(r docker.Reservation) string {
	if r.IPv6 == "" {
		return r.IPv4
	}
	return r.IPv4 + " and " + r.IPv6
}

// listReservations lists the addresses this host's Docker keeps reserved
// (package reserve).
func listReservations(host string) ([]docker.Reservation, error) {
	dk, err := docker.New(host)
	if err != nil {
		return nil, err
	}
	defer dk.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return dk.Reservations(ctx)
}

func (a *app) printStatus(pending []migrate.OutcomeRecord, said map[string]string, guards []migrate.GuardResult) {
	for id, state := range said {
		fmt.Fprintf(a.stdout, "resolved %s: the destination says %s\n", id, state)
	}
	if len(pending) == 0 {
		fmt.Fprintln(a.stdout, "no unresolved migrations")
	}
	for _, r := range pending {
		what := "committed here"
		if !r.Commit {
			what = "rolled back here (the original runs)"
		}
		fmt.Fprintf(a.stdout, "UNRESOLVED %s: %s %s at %s, %s has not confirmed (its copy stays paused): it is told when it next hears from this host, or run `migrate-src status --resolve`\n",
			r.MigrationID, r.Container, what, r.Decided.Local().Format(time.DateTime), r.Destination)
	}
	for _, g := range guards {
		fmt.Fprintf(a.stdout, "guard %s (pid %d, %s): %s; %s", g.MigrationID, g.Pid, g.Finished.Local().Format(time.DateTime), g.Outcome, strings.Join(g.Actions, "; "))
		if len(g.Errors) > 0 {
			fmt.Fprintf(a.stdout, "; FAILED: %s", strings.Join(g.Errors, "; "))
		}
		fmt.Fprintln(a.stdout)
	}
}

// runGuard is the guard that migrate-src starts before it dumps: it reads
// the migration's plan on file descriptor 3 and, if migrate-src dies
// mid-migration, puts this host right.
func runGuard(workDir string, tf *cli.TransferFlags, stderr io.Writer) int {
	// The terminal's and the process group's signals are migrate-src's.
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	log := slog.New(slog.NewTextHandler(stderr, nil))
	tc, err := tf.Config(false, log)
	if err != nil {
		log.Error("guard: the destination cannot be reached without credentials", "err", err)
	}
	r, err := migrate.RunGuard(context.Background(), os.NewFile(3, "plan"), os.NewFile(4, "lock"), workDir, tc, log)
	if err != nil {
		log.Error("guard", "err", err)
		return 1
	}
	if r != nil && len(r.Errors) > 0 {
		return 1
	}
	return 0
}

func (a *app) printSummary(r *migrate.Report) {
	for name, s := range r.Streams {
		rate := float64(s.Bytes) / s.Duration.Seconds()
		fmt.Fprintf(a.stderr, "  %-8s %10s -> %10s on the wire in %6.2fs (%s/s)\n", name, cli.Size(s.Bytes), cli.Size(s.WireBytes), s.Duration.Seconds(), cli.Size(int64(rate)))
	}
	if r.Strategy.PostCopy() {
		fmt.Fprintf(a.stderr, "  post-copy: %s of memory (%s on the wire) followed in %.2fs after the restart\n", cli.Size(r.PageBytes), cli.Size(r.PageBytesWire), r.MemoryTime.Seconds())
		if pc := r.PostCopy; pc != nil {
			page := int64(os.Getpagesize()) // CRIU moves memory between machines of one architecture
			fmt.Fprintf(a.stderr, "             %d page faults (%d on pages already on their way, %d on pages the dump did not hold); %s asked for by faults, %s sent ahead of them\n",
				pc.Faults, pc.Queued, pc.Zero, cli.Size(pc.FaultPages*page), cli.Size(pc.BackgroundPages*page))
		}
	} else if r.PageBytes > 0 {
		fmt.Fprintf(a.stderr, "  memory:   %s (%s on the wire) sent to the destination's page server as it was dumped\n", cli.Size(r.PageBytes), cli.Size(r.PageBytesWire))
	}
	fmt.Fprintf(a.stderr, "migrated %s to %s (%s): freeze time %d ms, total %.2fs, %s sent (%s on the wire)\n",
		r.Container, r.Destination, r.Strategy, r.FreezeTime.Milliseconds(), r.TotalTime.Seconds(), cli.Size(r.BytesRaw+r.PageBytes), cli.Size(r.BytesWire+r.PageBytesWire))
	if len(r.Freeze) > 0 {
		fmt.Fprintf(a.stderr, "  frozen: %s\n", freezeLine(r.Freeze))
	}
	for _, why := range r.DumpRetries {
		fmt.Fprintf(a.stderr, "  dumped again after: %s\n", why)
	}
	for _, res := range r.Reservations {
		fmt.Fprintf(a.stderr, "  address %s on %s stays reserved on this host (container %s) while the container lives elsewhere\n", addresses(res), res.Network, reserve.Name(res.Network, res.IPv4))
	}
	for _, w := range r.Warnings {
		fmt.Fprintln(a.stderr, "warning:", w)
	}
}

// freezeLine says where the freeze went: "dump 210 ms, ship 12 ms, on
// the destination: prepare 3 ms, ..., link 4 ms".
func freezeLine(steps []migrate.FreezeStep) string {
	var b strings.Builder
	host := ""
	for i, st := range steps {
		if i > 0 {
			b.WriteString(", ")
		}
		if st.Host == "destination" && host != st.Host {
			b.WriteString("on the destination: ")
		}
		host = st.Host
		fmt.Fprintf(&b, "%s %.1f ms", st.Step, float64(st.Time.Microseconds())/1000)
	}
	return b.String()
}

// runInstallPlugin installs migrate-src as the Docker CLI plugin.
func (a *app) runInstallPlugin(args []string) error {
	var dir string
	fs := pflag.NewFlagSet("install-plugin", pflag.ContinueOnError)
	fs.StringVar(&dir, "docker-config", "", "the Docker CLI's configuration directory (default: DOCKER_CONFIG, or ~/.docker)")
	err := cli.ParseFlags(fs, "install-plugin", args)
	switch {
	case errors.Is(err, pflag.ErrHelp):
		a.help.Write(a.stdout, "install-plugin", fs)
		return err
	case err != nil:
		return err
	case fs.NArg() != 0:
		return cli.Usagef("install-plugin", "unexpected argument %q", fs.Arg(0))
	}
	path, err := installPlugin(dir)
	if err != nil {
		return fmt.Errorf("install-plugin: %w", err)
	}
	fmt.Fprintf(a.stdout, "installed %s: docker migrate CONTAINER --to HOST (the same flags as migrate-src; the current Docker context, --context, -H and DOCKER_HOST choose the daemon)\n", path)
	return nil
}

// drain moves (or, with check, checks) every running container and
// says what became of each; it fails if any stays.
func (a *app) drain(ctx context.Context, cfg migrate.SourceConfig, opts migrate.DrainOptions, asJSON bool) int {
	results, err := migrate.Drain(ctx, cfg, opts, func(r migrate.DrainResult) {
		switch refused := r.Outcome == migrate.DrainRefused; {
		case r.Outcome == migrate.DrainWouldMove:
			fmt.Fprintf(a.stderr, "%s: would move to %s (%s)\n", r.Container, r.Destination, r.Report.Strategy)
		case r.Outcome == migrate.DrainMoved:
			fmt.Fprintf(a.stderr, "%s: moved to %s (%s, frozen %d ms)\n", r.Container, r.Destination, r.Report.Strategy, r.Report.FreezeTime.Milliseconds())
		case refused && cfg.DryRun:
			fmt.Fprintf(a.stderr, "%s: would not move: %s\n", r.Container, r.Error)
		case refused:
			fmt.Fprintf(a.stderr, "%s: refused, stays on this host (%s): %s\n", r.Container, r.State, r.Error)
		default:
			fmt.Fprintf(a.stderr, "%s: stays on this host (%s): %s\n", r.Container, r.State, r.Error)
		}
	})
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		enc.Encode(results)
	} else {
		printDrainTable(a.stdout, results)
	}
	if err != nil {
		fmt.Fprintln(a.stderr, "migrate-src: drain:", err)
		return 1
	}
	fmt.Fprintf(a.stderr, "drained: %d containers %s %s\n", len(results), map[bool]string{true: "would move to", false: "moved to"}[cfg.DryRun], strings.Join(opts.To, ", "))
	return 0
}

// printDrainTable ends a drain with what became of each container.
func printDrainTable(w io.Writer, results []migrate.DrainResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER\tOUTCOME\tDESTINATION\tSTRATEGY\tFREEZE\tWHY")
	for _, r := range results {
		strategy, freeze := "-", "-"
		if r.Report != nil && r.Report.Strategy != "" {
			strategy = string(r.Report.Strategy)
		}
		if r.Outcome == migrate.DrainMoved {
			freeze = fmt.Sprintf("%d ms", r.Report.FreezeTime.Milliseconds())
		}
		why := r.Error
		if r.State != "" {
			why = fmt.Sprintf("%s (here: %s)", why, r.State)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Container, r.Outcome, cmp.Or(r.Destination, "-"), strategy, freeze, cmp.Or(why, "-"))
	}
	tw.Flush()
}
