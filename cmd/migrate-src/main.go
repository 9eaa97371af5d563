//go:debug multipathtcp=0

//go:build linux

// Command migrate-src moves a running Docker container, or a plain process
// tree, to another host running migrate-dst:
//
//	migrate-src --to HOST[:PORT] [flags] CONTAINER
//	migrate-src --to HOST[:PORT] [flags] --pid PID
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
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
	os.Exit(run())
}

func run() int {
	argv := os.Args[1:]
	if len(argv) == 1 && argv[0] == reserve.HoldArg {
		// In a reservation container (package reserve).
		return reserve.Hold()
	}
	if filepath.Base(os.Args[0]) == pluginName {
		// Run by the Docker CLI as `docker migrate ...`.
		if len(argv) == 1 && argv[0] == "docker-cli-plugin-metadata" {
			pluginMetadata(os.Stdout)
			return 0
		}
		g, rest, err := pluginArgs(argv)
		if err == nil {
			var host string
			if host, err = dockerEndpoint(g); host != "" {
				rest = append([]string{"--docker-host", host}, rest...)
			}
			argv = rest
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "docker migrate:", err)
			return 2
		}
	}
	if len(argv) > 0 && argv[0] == "install-plugin" {
		return runInstallPlugin(argv[1:])
	}
	cfg := migrate.DefaultSourceConfig()
	var tf cli.TransferFlags
	var asJSON, verbose, guard, resolve bool
	var eventsPath string
	fs := pflag.NewFlagSet("migrate-src", pflag.ContinueOnError)
	fs.Usage = func() {
		if filepath.Base(os.Args[0]) == pluginName {
			fmt.Fprintf(os.Stderr, "usage: docker migrate CONTAINER --to HOST[:PORT] [flags]\n       docker migrate check CONTAINER --to HOST[:PORT] [flags]\n\n%s", fs.FlagUsages())
			return
		}
		fmt.Fprintf(os.Stderr, "usage: migrate-src --to HOST[:PORT] [flags] CONTAINER\n       migrate-src --to HOST[:PORT] [flags] --pid PID\n"+
			"       migrate-src check --to HOST[:PORT] [flags] CONTAINER   would it move, and how? (nothing frozen, nothing made on HOST)\n"+
			"       migrate-src drain [check] --to HOST[:PORT] [--label KEY[=VALUE]] [flags]   move every running container, one after the other\n"+
			"       migrate-src status [--resolve] [--json]   unresolved migrations and what guards did\n"+
			"       migrate-src install-plugin [--docker-config DIR]   install as the Docker CLI plugin: docker migrate CONTAINER --to HOST\n\n%s", fs.FlagUsages())
	}
	fs.StringVar(&cfg.To, "to", "", "destination migrate-dst, HOST[:PORT] (default port 7070)")
	var allowDestinations []string
	fs.StringSliceVar(&allowDestinations, "allow-destination", nil, "send only to these hosts (names or addresses in their certificates; comma-separated or repeated); default: any host whose certificate the CA signed and names the --to address")
	fs.StringVar(&cfg.Docker, "docker-host", "", "local dockerd (default: DOCKER_HOST or the default socket)")
	strategy, policy := string(cfg.Strategy), string(cfg.PrecopyPolicy)
	fs.StringVar(&strategy, "strategy", strategy, "migration strategy: stop-and-copy, lazy (post-copy), precopy (pre-dump rounds while running), "+
		"hybrid (pre-dump rounds, then post-copy) or auto (hybrid, lazy, precopy or stop-and-copy: the first the kernels allow)")
	fs.StringVar(&policy, "precopy-policy", policy, "when pre-dump rounds stop: adaptive (predicted freeze fits --max-freeze, or no progress), phaul or lxd (those tools' rules)")
	ghostLimit := "64MiB"
	fs.StringVar(&ghostLimit, "ghost-limit", ghostLimit, "largest deleted-but-open file that moves with its process (CRIU copies it into the images); a larger one is refused before freezing")
	fs.DurationVar(&cfg.DumpTimeout, "dump-timeout", cfg.DumpTimeout, "longest CRIU's dump may keep the container frozen before it is stopped and the container resumed")
	fs.IntVar(&cfg.PrecopyLimits.MaxRounds, "max-rounds", cfg.PrecopyLimits.MaxRounds, "at most this many pre-dump rounds")
	fs.DurationVar(&cfg.PrecopyLimits.MaxFreeze, "max-freeze", cfg.PrecopyLimits.MaxFreeze, "adaptive policy: stop the rounds once the predicted freeze fits this")
	fs.DurationVar(&cfg.PrecopyLimits.RestoreFloor, "restore-floor", cfg.PrecopyLimits.RestoreFloor, "adaptive policy: the destination's fixed restore time, added to the predicted freeze, until the destination reports its own last restore time")
	fs.IntVar(&cfg.Pid, "pid", 0, "move the plain process tree rooted at PID instead of a container (best the init of its own PID namespace; the destination needs --allow-processes)")
	fs.BoolVar(&cfg.KeepSource, "keep-source", false, "keep the stopped original container instead of removing it")
	fs.BoolVar(&cfg.AllowNewAddress, "allow-new-address", false, "if the destination cannot keep the container's IP/MAC, accept a new address (its TCP connections are closed)")
	fs.BoolVar(&cfg.CreateNetworks, "create-networks", false, "ask the destination to create, from this host's definitions, the container's networks it lacks (where it allows: migrate-dst --allow-create-networks)")
	bindMounts := ""
	fs.StringVar(&bindMounts, "bind-mounts", "", "move bind mounts of host paths: copy (their contents, at the freeze, to the same paths on the destination) or shared (the destination sees the same paths on shared storage, checked before freezing); default: refused")
	fs.StringToStringVar(&cfg.RemapPorts, "remap-port", nil, "publish a host port elsewhere on the destination: [IP:]PORT=[IP:]OTHER (repeat); default the same ports")
	fs.StringVar(&cfg.WorkDir, "work-dir", cfg.WorkDir, "where the dump is written while it is shipped")
	fs.StringVar(&cfg.CRIU, "criu", "", "criu binary (default: criu in PATH)")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON on stdout")
	var labels []string
	fs.StringArrayVar(&labels, "label", nil, "drain: only the containers with this label, KEY or KEY=VALUE (repeat)")
	fs.StringVar(&eventsPath, "events", "", "write the migration's events (stages, the outcome) as JSON lines to this file (e.g. /dev/fd/3)")
	fs.BoolVar(&resolve, "resolve", false, "with status: deliver every commit its destination has not confirmed")
	fs.BoolVarP(&verbose, "verbose", "v", false, "log details to stderr")
	fs.BoolVar(&guard, migrate.GuardFlag, false, "run as a migration's guard (started by migrate-src itself)")
	fs.MarkHidden(migrate.GuardFlag)
	fs.StringVar(&cfg.PauseAt, "pause-at", "", "fault-injection tests: pause on entering this stage")
	fs.DurationVar(&cfg.PauseFor, "pause-for", time.Minute, "fault-injection tests: how long --pause-at pauses")
	fs.MarkHidden("pause-at")
	fs.MarkHidden("pause-for")
	tf.Register(fs)
	if err := fs.Parse(argv); err != nil {
		return 2
	}
	if guard {
		return runGuard(cfg.WorkDir, &tf)
	}
	if fs.NArg() == 1 && fs.Arg(0) == "status" && cfg.To == "" {
		return status(cfg, resolve, asJSON, &tf)
	}
	args := fs.Args()
	drain := len(args) > 0 && args[0] == "drain"
	if drain {
		args = args[1:]
	}
	if len(args) > 0 && args[0] == "check" {
		cfg.DryRun, args = true, args[1:]
	}
	switch {
	case drain && (len(args) != 0 || cfg.Pid != 0 || cfg.To == ""),
		!drain && ((len(args) != 1 && cfg.Pid == 0) || (len(args) != 0 && cfg.Pid != 0) || cfg.To == ""):
		fs.Usage()
		return 2
	}
	if !drain && cfg.Pid == 0 {
		cfg.Container = args[0]
	}
	n, err := units.RAMInBytes(ghostLimit)
	if err != nil {
		fmt.Fprintf(os.Stderr, "migrate-src: --ghost-limit %q: %v\n", ghostLimit, err)
		return 2
	}
	cfg.GhostLimit = n
	cfg.BindMounts = protocol.BindMode(bindMounts)
	if cfg.Strategy, err = protocol.ParseStrategy(strategy); err != nil {
		fmt.Fprintf(os.Stderr, "migrate-src: --strategy: %v\n", err)
		return 2
	}
	if cfg.PrecopyPolicy, err = predump.ParsePolicy(policy); err != nil {
		fmt.Fprintf(os.Stderr, "migrate-src: --precopy-policy: %v\n", err)
		return 2
	}
	if _, _, err := net.SplitHostPort(cfg.To); err != nil {
		cfg.To = net.JoinHostPort(cfg.To, "7070")
	}
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg.Logger = log
	if cfg.GuardBinary, err = os.Executable(); err != nil {
		fmt.Fprintln(os.Stderr, "migrate-src:", err)
		return 1
	}
	cfg.GuardArgs = tf.Args()
	if cfg.Transfer, err = tf.Config(false, log); err != nil {
		fmt.Fprintln(os.Stderr, "migrate-src:", err)
		return 1
	}
	cfg.Transfer.AllowPeers = allowDestinations
	if p := cli.NewProgress(os.Stderr); p != nil {
		cfg.Transfer.Progress = p.Update
	}
	ev, err := events.Open(eventsPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrate-src:", err)
		return 1
	}
	defer ev.Close()
	start := time.Now()
	cfg.OnStage = func(st migrate.Stage) {
		fmt.Fprintf(os.Stderr, "[%6.2fs] %s%s\n", time.Since(start).Seconds(), st.Name, st.Detail)
		ev.Stage(st.Name, st.Detail, st.MigrationID)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if drain {
		return runDrain(ctx, cfg, labels, asJSON)
	}
	report, err := migrate.Migrate(ctx, cfg)
	ev.End(err)
	if asJSON && report != nil {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(report)
	}
	what := cfg.Container
	if cfg.Pid != 0 {
		what = fmt.Sprintf("process %d", cfg.Pid)
	}
	if err != nil {
		if cfg.DryRun {
			fmt.Fprintf(os.Stderr, "migrate-src: %s would not move to %s: %v\n", what, cfg.To, err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "migrate-src: %s was not migrated: %v\n", what, err)
		return 1
	}
	if cfg.DryRun {
		if !asJSON {
			printCheck(what, report)
		}
		return 0
	}
	printSummary(report)
	return 0
}

// printCheck says what a migration would do, from a dry run's report.
func printCheck(what string, r *migrate.Report) {
	c := r.Check
	fmt.Printf("%s would move to %s (%s, nothing was frozen or made there)\n", what, r.Destination, r.Hosts.Destination)
	fmt.Printf("  strategy %s: %s\n", r.Strategy, r.StrategyReason)
	fmt.Printf("  to ship: memory %s, writable layer %s, volumes %s\n", cli.Size(c.Sizes.Memory), cli.Size(c.Sizes.Rootfs), cli.Size(c.Sizes.Volumes))
	switch {
	case c.NeedImage && c.HaveLayers > 0:
		fmt.Printf("  image: host2 has %d of its %d layers; the rest is sent (at most %s)\n", c.HaveLayers, c.ImageLayers, cli.Size(c.Sizes.Image))
	case c.NeedImage:
		fmt.Printf("  image: sent whole (%s)\n", cli.Size(c.Sizes.Image))
	case c.ImageLayers > 0:
		fmt.Println("  image: present on host2")
	}
	if c.NewAddress {
		fmt.Println("  address: a new one on host2 (its TCP connections will be closed)")
	}
	if c.LastRestore > 0 {
		fmt.Printf("  host2's last restore took %v (the floor of the freeze)\n", c.LastRestore)
	}
}

// status shows the commits whose destination has not confirmed them and
// what guards did after an interrupted migrate-src; with resolve, it
// delivers those commits.
func status(cfg migrate.SourceConfig, resolve, asJSON bool, tf *cli.TransferFlags) int {
	workDir := cfg.WorkDir
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pending, err := migrate.PendingOutcomes(workDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrate-src:", err)
		return 1
	}
	var said map[string]string
	if resolve && len(pending) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		tc, err := tf.Config(false, log)
		var caps criu.Capabilities
		if err == nil {
			caps, err = criu.Probe(ctx, cfg.CRIU)
		}
		if err == nil {
			tc.Hello = transfer.Hello{Role: transfer.RoleSource, Agent: migrate.Version, CRIU: transfer.CRIUInfo{Version: caps.Version}}
			said, err = migrate.ResolvePending(ctx, workDir, tc, log)
		}
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "migrate-src: resolve:", err)
		}
		pending, _ = migrate.PendingOutcomes(workDir)
	}
	guards := migrate.GuardResults(workDir)
	reservations, err := listReservations(cfg.Docker)
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrate-src: reservations:", err)
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(map[string]any{"unresolved": pending, "resolved": said, "guards": guards, "reservations": reservations})
	} else {
		printStatus(pending, said, guards)
		for _, r := range reservations {
			fmt.Printf("reserved: %s on %s (container %s) for a container that moved away; `docker rm -f` it once that container is gone for good\n",
				r.IPv4, r.Network, reserve.Name(r.Network, r.IPv4))
		}
	}
	if len(pending) > 0 {
		return 3
	}
	return 0
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

func printStatus(pending []migrate.OutcomeRecord, said map[string]string, guards []migrate.GuardResult) {
	for id, state := range said {
		fmt.Printf("resolved %s: the destination says %s\n", id, state)
	}
	if len(pending) == 0 {
		fmt.Println("no unresolved migrations")
	}
	for _, r := range pending {
		fmt.Printf("UNRESOLVED %s: %s committed here at %s, %s has not confirmed (its copy stays paused): run `migrate-src status --resolve`\n",
			r.MigrationID, r.Container, r.Decided.Local().Format(time.DateTime), r.Destination)
	}
	for _, g := range guards {
		fmt.Printf("guard %s (pid %d, %s): %s; %s", g.MigrationID, g.Pid, g.Finished.Local().Format(time.DateTime), g.Outcome, strings.Join(g.Actions, "; "))
		if len(g.Errors) > 0 {
			fmt.Printf("; FAILED: %s", strings.Join(g.Errors, "; "))
		}
		fmt.Println()
	}
}

// runGuard is the guard that migrate-src starts before it dumps: it reads
// the migration's plan on file descriptor 3 and, if migrate-src dies
// mid-migration, puts this host right.
func runGuard(workDir string, tf *cli.TransferFlags) int {
	// The terminal's and the process group's signals are migrate-src's.
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
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

func printSummary(r *migrate.Report) {
	for name, s := range r.Streams {
		rate := float64(s.Bytes) / s.Duration.Seconds()
		fmt.Fprintf(os.Stderr, "  %-8s %10s -> %10s on the wire in %6.2fs (%s/s)\n", name, cli.Size(s.Bytes), cli.Size(s.WireBytes), s.Duration.Seconds(), cli.Size(int64(rate)))
	}
	if r.Strategy.PostCopy() {
		fmt.Fprintf(os.Stderr, "  post-copy: %s of memory followed in %.2fs after the restart\n", cli.Size(r.PageBytes), r.MemoryTime.Seconds())
	}
	fmt.Fprintf(os.Stderr, "migrated %s to %s (%s): freeze time %d ms, total %.2fs, %s sent (%s on the wire)\n",
		r.Container, r.Destination, r.Strategy, r.FreezeTime.Milliseconds(), r.TotalTime.Seconds(), cli.Size(r.BytesRaw+r.PageBytes), cli.Size(r.BytesWire+r.PageBytes))
	if len(r.Freeze) > 0 {
		fmt.Fprintf(os.Stderr, "  frozen: %s\n", freezeLine(r.Freeze))
	}
	for _, res := range r.Reservations {
		fmt.Fprintf(os.Stderr, "  address %s on %s stays reserved on this host (container %s) while the container lives elsewhere\n", res.IPv4, res.Network, reserve.Name(res.Network, res.IPv4))
	}
	for _, w := range r.Warnings {
		fmt.Fprintln(os.Stderr, "warning:", w)
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
func runInstallPlugin(args []string) int {
	var dir string
	fs := pflag.NewFlagSet("install-plugin", pflag.ContinueOnError)
	fs.StringVar(&dir, "docker-config", "", "the Docker CLI's configuration directory (default: DOCKER_CONFIG, or ~/.docker)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		return 2
	}
	path, err := installPlugin(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrate-src: install-plugin:", err)
		return 1
	}
	fmt.Printf("installed %s: docker migrate CONTAINER --to HOST (the same flags as migrate-src; the current Docker context, --context, -H and DOCKER_HOST choose the daemon)\n", path)
	return 0
}

// runDrain moves (or, with check, checks) every running container and
// says what became of each; it fails if any stays.
func runDrain(ctx context.Context, cfg migrate.SourceConfig, labels []string, asJSON bool) int {
	results, err := migrate.Drain(ctx, cfg, labels, func(r migrate.DrainResult) {
		switch {
		case r.Error != "" && cfg.DryRun:
			fmt.Fprintf(os.Stderr, "%s: would not move: %s\n", r.Container, r.Error)
		case r.Error != "":
			fmt.Fprintf(os.Stderr, "%s: stays on this host: %s\n", r.Container, r.Error)
		case cfg.DryRun:
			fmt.Fprintf(os.Stderr, "%s: would move (%s)\n", r.Container, r.Report.Strategy)
		default:
			fmt.Fprintf(os.Stderr, "%s: moved (%s, frozen %d ms)\n", r.Container, r.Report.Strategy, r.Report.FreezeTime.Milliseconds())
		}
	})
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(results)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrate-src: drain:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "drained: %d containers %s %s\n", len(results), map[bool]string{true: "would move to", false: "moved to"}[cfg.DryRun], cfg.To)
	return 0
}
