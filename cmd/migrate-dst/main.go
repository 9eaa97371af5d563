//go:debug multipathtcp=0

//go:build linux

// Command migrate-dst receives migrated containers and restores them under
// this host's Docker:
//
//	migrate-dst [--listen :7070] [flags]          serve migrations
//	migrate-dst certs --out DIR --host NAME[=ADDR,...] ...
//	migrate-dst install-runtime [flags]           register the restore runtime
//	migrate-dst uninstall-runtime [flags]
//	migrate-dst install [flags]                     make this host a destination (unit, config file, runtime)
//	migrate-dst uninstall [flags]                   undo what install did
//	migrate-dst generate man|bash-completion|...    documents and the files install writes
//	migrate-dst status [--json]                     migrations under way or in doubt
//	migrate-dst help [COMMAND]                      the same as COMMAND --help
package main

import (
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
	"time"

	"github.com/spf13/pflag"

	"github.com/dockmove/dockmove/internal/cli"
	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/internal/events"
	"github.com/dockmove/dockmove/internal/reserve"
	"github.com/dockmove/dockmove/internal/restoreruntime"
	"github.com/dockmove/dockmove/migrate"
	"github.com/dockmove/dockmove/transfer"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// run runs the command line args (args[0] is the program's name) and
// returns the exit status: 0, 1 for a failure, 2 for a command line it
// cannot run.
func run(args []string, stdout, stderr io.Writer) int {
	args = args[1:]
	if len(args) > 0 && args[0] == reserve.HoldArg {
		// In a reservation container (package reserve).
		return reserve.Hold()
	}
	if len(args) > 0 && args[0] == migrate.SentinelArg {
		// A migration's sentinel, started by migrate-dst itself.
		return sentinel(args[1:], stderr)
	}
	a := &agent{stdout: stdout, stderr: stderr}
	return help.Exit(stderr, a.run(args))
}

// agent is one run of migrate-dst: where its commands write.
type agent struct {
	stdout, stderr io.Writer
	// collect, if set, receives each command's flags in place of its
	// help (generate's man page and completion).
	collect func(command string, fs *pflag.FlagSet)
}

// run runs the command that the first argument names; serve if it is a
// flag or there is none.
func (a *agent) run(args []string) error {
	name := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	switch name {
	case "serve":
		return a.serve(args)
	case "certs":
		return a.certs(args)
	case "install-runtime", "uninstall-runtime":
		return a.installRuntime(name, args)
	case "status":
		return a.status(args)
	case "install":
		return a.install(args)
	case "uninstall":
		return a.uninstall(args)
	case "generate":
		return a.generate(args)
	case "help":
		return a.help(args)
	}
	return cli.Usagef("", "unknown command %q", name)
}

// parse parses the flags of the command name ("" for serve) and allows it
// at most maxArgs arguments; --help writes the command's help to stdout.
func (a *agent) parse(fs *pflag.FlagSet, name string, args []string, maxArgs int) error {
	err := cli.ParseFlags(fs, name, args)
	if errors.Is(err, pflag.ErrHelp) {
		a.writeHelp(name, fs)
	}
	if err == nil && fs.NArg() > maxArgs {
		return cli.Usagef(name, "unexpected argument %q", fs.Arg(maxArgs))
	}
	return err
}

// help writes the help of the command it names, or migrate-dst's.
func (a *agent) help(args []string) error {
	fs := pflag.NewFlagSet("help", pflag.ContinueOnError)
	if err := a.parse(fs, "help", args, 1); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return a.run([]string{"--help"})
	}
	if _, ok := help.Lookup(fs.Arg(0)); !ok {
		return cli.Usagef("", "unknown command %q", fs.Arg(0))
	}
	return a.run([]string{fs.Arg(0), "--help"})
}

// status lists the migrations this host holds state for; an in-doubt one
// has its copy paused until its source resolves it.
func (a *agent) status(args []string) error {
	workDir, asJSON := migrate.DefaultDestConfig().WorkDir, false
	fs := pflag.NewFlagSet("status", pflag.ContinueOnError)
	fs.StringVar(&workDir, "work-dir", workDir, "the agent's work directory")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	if err := a.parse(fs, "status", args, 0); err != nil {
		return err
	}
	list, err := migrate.DestinationStatus(workDir)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	if len(list) == 0 {
		fmt.Fprintln(a.stdout, "no migrations under way or in doubt")
	}
	for _, m := range list {
		what := "under way"
		if m.InDoubt {
			what = "IN DOUBT: the copy is paused until the source resolves it (migrate-src status --resolve on the source)"
		}
		fmt.Fprintf(a.stdout, "%s %s (%s since %s): %s\n", m.MigrationID, m.Name, m.Phase, m.Updated.Local().Format(time.DateTime), what)
	}
	return nil
}

// serveFlags are serve's flags: the destination's configuration and what
// the command line adds to it.
type serveFlags struct {
	cfg           migrate.DestConfig
	tf            cli.TransferFlags
	listen        string
	networkRanges []string
	allowSources  []string
	eventsPath    string
	metricsListen string
	version       bool
}

// newServeFlags returns serve's flags before the command line: the
// destination's defaults.
func newServeFlags() *serveFlags {
	return &serveFlags{cfg: migrate.DefaultDestConfig(), listen: ":7070"}
}

// flagSet returns the flags that set f.
func (f *serveFlags) flagSet() *pflag.FlagSet {
	cfg := &f.cfg
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.StringVar(&f.listen, "listen", f.listen, "address to accept migrations on")
	fs.StringVar(&cfg.Docker, "docker-host", "", "local dockerd (default: DOCKER_HOST or the default socket)")
	fs.StringVar(&cfg.WorkDir, "work-dir", cfg.WorkDir, "staging and migration state")
	fs.StringVar(&cfg.RuntimeState, "runtime-state", cfg.RuntimeState, "the restore runtime's state directory (as given to install-runtime)")
	fs.StringVar(&cfg.CRIU, "criu", "", "criu binary (default: criu in PATH)")
	fs.StringArrayVar(&cfg.RestoreCRIUOptions, "restore-criu-option", nil, "extra CRIU option for every restore, as in a CRIU config file (repeat)")
	fs.StringArrayVar(&cfg.BindBases, "bind-base", nil, "accept containers' bind mounts of host paths below this directory (repeat): copied ones are made there, shared ones must be found there; default: none accepted")
	fs.StringSliceVar(&cfg.Networks, "networks", nil, "the networks a migrated container may be attached to here (comma-separated or repeated); default any this host has")
	fs.BoolVar(&cfg.CreateNetworks, "allow-create-networks", false, "create, for a migration whose source asks (migrate-src --create-networks), a network the container is on and this host lacks, from the source's definition under this host's policy (bridge, macvlan; a shared one needs --network-range); default: refused")
	fs.StringArrayVar(&f.networkRanges, "network-range", nil, "this host's own allocation range for a shared (macvlan) network it creates: NAME=CIDR (repeat: one IPv4 and, for a dual-stack network, one IPv6 range each)")
	fs.StringVar(&cfg.HostPorts, "host-ports", "", "host ports a container may publish here (-p), e.g. 80,443,8000-9000; default every port. A container publishing another is refused before it is frozen")
	fs.StringSliceVar(&cfg.AllowCaps, "allow-cap", nil, "capabilities a container may add beyond Docker's default set (comma-separated or repeated; ALL allows any): a source is trusted with them")
	fs.StringSliceVar(&cfg.AllowLabels, "allow-label", nil, "label keys or patterns (e.g. com.example.*) a container may carry here (comma-separated or repeated); a container with another is refused before it is frozen; default any")
	fs.StringSliceVar(&cfg.DenyLabels, "deny-label", nil, "label keys or patterns a container may not carry here (e.g. traefik.*, when this host's proxy routes by them); refused before it is frozen")
	fs.StringSliceVar(&f.allowSources, "allow-source", nil, "accept migrations only from these hosts (names or addresses in their certificates; comma-separated or repeated); default: any host whose certificate the CA signed")
	fs.StringVar(&f.eventsPath, "events", "", "write machine-readable events (JSON lines: ready) to this file (/dev/fd/N: an inherited descriptor)")
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "serve Prometheus metrics at http://ADDR/metrics (plain HTTP: an address only the monitoring network reaches); default: none")
	fs.BoolVar(&cfg.AllowProcesses, "allow-processes", false, "also accept plain process trees (migrate-src --pid), restored with CRIU on this host outside any container; without Docker, accept only those")
	fs.BoolVar(&f.version, "version", false, "print migrate-dst's version and exit")
	f.tf.Register(fs)
	return fs
}

// config completes the destination's configuration from the flags.
func (f *serveFlags) config(log *slog.Logger) (migrate.DestConfig, error) {
	cfg := f.cfg
	for _, r := range f.networkRanges {
		name, cidr, ok := strings.Cut(r, "=")
		if !ok || name == "" {
			return cfg, cli.Usagef("", "--network-range %q: want NAME=CIDR", r)
		}
		if cfg.NetworkRanges == nil {
			cfg.NetworkRanges = map[string][]string{}
		}
		cfg.NetworkRanges[name] = append(cfg.NetworkRanges[name], cidr)
	}
	cfg.Logger = log
	var err error
	// This very binary, even once a package upgrade has replaced the file.
	cfg.SentinelBinary = "/proc/self/exe"
	if cfg.Transfer, err = f.tf.Config(true, log); err != nil {
		return cfg, err
	}
	cfg.Transfer.AllowPeers = f.allowSources
	if len(f.allowSources) == 0 && !f.tf.Plaintext {
		log.Info("any host with a certificate from this CA may migrate here; name the sources with --allow-source")
	}
	if f.tf.Plaintext && !loopbackOnly(f.listen) {
		return cfg, fmt.Errorf("--insecure-plaintext-no-auth lets anyone who can connect restore processes as root here: it listens only on a loopback address (e.g. --listen 127.0.0.1:7070), not %q", f.listen)
	}
	return cfg, nil
}

// serve accepts migrations until it is interrupted.
func (a *agent) serve(args []string) error {
	f := newServeFlags()
	if err := a.parseServe(f, args); err != nil {
		return err
	}
	if f.version {
		fmt.Fprintln(a.stdout, cli.Version(help.Program, migrate.Version))
		return nil
	}
	cfg, err := f.config(slog.New(slog.NewTextHandler(a.stderr, nil)))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if cfg.Observer, err = serveMetrics(ctx, f.metricsListen, cfg.Logger); err != nil {
		return err
	}
	srv, err := migrate.NewServer(ctx, cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	ev, err := events.Open(f.eventsPath)
	if err != nil {
		return err
	}
	defer ev.Close()
	ev.Ready(ln.Addr().String()) // connections queue from here on
	return srv.Serve(ctx, ln)
}

// certs makes, extends, renews or revokes a TLS bundle.
func (a *agent) certs(args []string) error {
	var out string
	var hosts []string
	var renew bool
	var revoke []string
	roles := map[string]string{}
	fs := pflag.NewFlagSet("certs", pflag.ContinueOnError)
	fs.StringVar(&out, "out", "dockmove-tls", "directory for the CA and one subdirectory per host; if it holds a CA already, certificates are issued from it for hosts that have none")
	fs.StringArrayVar(&hosts, "host", nil, "NAME[=ADDR,ADDR...]: a host and the names/IPs it is reached by (repeat)")
	fs.StringToStringVar(&roles, "role", roles, "NAME=source|destination|both: what the host's certificate allows it to be (default both); a peer's TLS refuses a certificate used in the other role (repeat)")
	fs.StringSliceVar(&revoke, "revoke", nil, "NAME: add every certificate issued to that host to the CA directory's revoked.txt, to copy to each host's TLS directory (repeat)")
	fs.BoolVar(&renew, "renew", false, "issue new certificates (valid one year) for hosts that have some, into NAME.renewed-DATE")
	if err := a.parse(fs, "certs", args, 0); err != nil {
		return err
	}
	for _, name := range revoke {
		path, serials, err := transfer.Revoke(out, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s: revoked %s; copy %s to /etc/dockmove/tls/%s on every host\n", name, strings.Join(serials, ", "), path, transfer.RevokedFile)
	}
	if len(revoke) > 0 && len(hosts) == 0 {
		return nil
	}
	var bundle []transfer.BundleHost
	for _, h := range hosts {
		name, sans, _ := strings.Cut(h, "=")
		b := transfer.BundleHost{Name: name, Role: roles[name]}
		delete(roles, name)
		if sans != "" {
			b.SANs = strings.Split(sans, ",")
		}
		bundle = append(bundle, b)
	}
	for name := range roles {
		return cli.Usagef("certs", "--role %s: no --host %s", name, name)
	}
	if _, err := os.Stat(filepath.Join(out, "ca.pem")); err == nil {
		written, err := transfer.IssueHosts(out, bundle, renew)
		for _, dir := range written {
			fmt.Fprintf(a.stdout, "copy %s to /etc/dockmove/tls on %s\n", dir, strings.SplitN(filepath.Base(dir), ".", 2)[0])
		}
		return err
	} else if renew {
		return fmt.Errorf("--renew: %s holds no CA to renew from", out)
	}
	if err := transfer.WriteBundle(out, bundle); err != nil {
		return err
	}
	for _, b := range bundle {
		fmt.Fprintf(a.stdout, "%s: copy %s/%s to /etc/dockmove/tls on that host\n", b.Name, out, b.Name)
	}
	return nil
}

// installRuntime registers the restore runtime with dockerd, or with
// name uninstall-runtime unregisters it.
func (a *agent) installRuntime(name string, args []string) error {
	cfg := restoreruntime.DefaultInstallConfig()
	var dockerHost string
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	if name == "install-runtime" {
		fs.StringVar(&cfg.Source, "from", "", "runtime binary to install (default: dockmove-runtime next to migrate-dst)")
	}
	fs.StringVar(&cfg.Binary, "binary", cfg.Binary, "where to install the runtime")
	fs.StringVar(&cfg.State, "runtime-state", cfg.State, "the runtime's state directory")
	fs.StringVar(&cfg.DaemonJSON, "daemon-json", cfg.DaemonJSON, "dockerd's configuration file")
	fs.StringVar(&cfg.PIDFile, "dockerd-pidfile", cfg.PIDFile, "dockerd's pidfile (to reload it)")
	fs.StringVar(&dockerHost, "docker-host", "", "dockerd to verify against (default: DOCKER_HOST or the default socket)")
	if err := a.parse(fs, name, args, 0); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dk, err := docker.New(dockerHost)
	if err != nil {
		return err
	}
	defer dk.Close()
	if name == "uninstall-runtime" {
		users, err := dk.ContainersUsingRuntime(ctx, restoreruntime.Name)
		if err != nil {
			return err
		}
		return restoreruntime.Uninstall(cfg, users)
	}
	if cfg.Source == "" {
		if cfg.Source, err = cli.SiblingBinary("dockmove-runtime"); err != nil {
			return err
		}
	}
	changed, err := restoreruntime.Install(cfg)
	if err != nil {
		return err
	}
	if !changed {
		fmt.Fprintln(a.stdout, "restore runtime already installed")
		return nil
	}
	for ctx.Err() == nil {
		if ok, _ := dk.HasRuntime(ctx, restoreruntime.Name); ok {
			fmt.Fprintf(a.stdout, "restore runtime %q installed at %s (dockerd reloaded)\n", restoreruntime.Name, cfg.Binary)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("dockerd did not pick up the runtime from %s", cfg.DaemonJSON)
}

// loopbackOnly reports whether a listen address can be reached only from
// this host.
func loopbackOnly(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sentinel runs as a migration's sentinel (migrate.RunSentinel): its plans
// arrive on file descriptor 3; args are the Docker address and its lock.
func sentinel(args []string, stderr io.Writer) int {
	// The terminal's and the process group's signals are migrate-dst's
	// (a pkill of migrate-dst's name reaches this process too).
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	var host, lock string
	if len(args) > 0 {
		host = args[0]
	}
	if len(args) > 1 {
		lock = args[1]
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := migrate.RunSentinel(context.Background(), os.NewFile(3, "plans"), host, lock, log); err != nil {
		log.Error("sentinel", "err", err)
		return 1
	}
	return 0
}
