//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/dockmove/dockmove/internal/cli"
	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/internal/install"
	"github.com/dockmove/dockmove/internal/restoreruntime"
	"github.com/dockmove/dockmove/migrate"
)

// installFlags are install's and uninstall's own flags.
type installFlags struct {
	root, binDir, configFile, unitDir, daemonJSON, pidFile string
	now, noDocker, asJSON                                  bool
}

// register adds the flags that command (install or uninstall) takes.
func (f *installFlags) register(fs *pflag.FlagSet, command string) {
	fs.StringVar(&f.root, "root", "", "work below this directory: the default paths below (/etc/dockmove, /etc/systemd/system, /etc/docker/daemon.json, /var/lib/dockmove, /var/run/docker.pid) and serve's --tls-dir, --work-dir and --runtime-state move there (for tests and images)")
	fs.StringVar(&f.configFile, "config", "", "migrate-dst's config file (default ROOT/etc/dockmove/migrate-dst.conf)")
	fs.StringVar(&f.unitDir, "unit-dir", "", "the systemd unit directory (default ROOT/etc/systemd/system)")
	fs.StringVar(&f.pidFile, "dockerd-pidfile", "", "dockerd's pidfile, to reload it (default ROOT/var/run/docker.pid)")
	fs.BoolVar(&f.asJSON, "json", false, "print what was done as JSON")
	if command == "install" {
		fs.StringVar(&f.binDir, "bin-dir", "", "the directory holding migrate-dst and dockmove-runtime, as the unit and daemon.json name them (default: this migrate-dst's)")
		fs.StringVar(&f.daemonJSON, "daemon-json", "", "dockerd's configuration file (default ROOT/etc/docker/daemon.json)")
		fs.BoolVar(&f.now, "now", false, "also run systemctl daemon-reload and systemctl enable --now (and restart the service if it ran and its unit or config changed)")
	} else {
		fs.BoolVar(&f.now, "now", false, "first run systemctl disable --now, then systemctl daemon-reload")
		fs.BoolVar(&f.noDocker, "no-docker", false, "do not ask dockerd which containers use the restore runtime (when dockerd is not running)")
	}
}

// config returns the install configuration the flags give.
func (f *installFlags) config() (install.Config, error) {
	cfg := install.DefaultConfig(f.root)
	for _, o := range []struct {
		dst *string
		v   string
	}{{&cfg.ConfigFile, f.configFile}, {&cfg.UnitDir, f.unitDir}, {&cfg.DaemonJSON, f.daemonJSON}, {&cfg.PIDFile, f.pidFile}, {&cfg.BinDir, f.binDir}} {
		if o.v != "" {
			abs, err := filepath.Abs(o.v)
			if err != nil {
				return cfg, err
			}
			*o.dst = abs
		}
	}
	if cfg.BinDir == "" {
		self, err := os.Executable()
		if err != nil {
			return cfg, err
		}
		cfg.BinDir = filepath.Dir(self)
	}
	return cfg, nil
}

// rootedServeFlags are serve's flags whose default paths install moves
// below --root, where the config file does not set them.
var rootedServeFlags = []string{"tls-dir", "work-dir", "runtime-state"}

// install makes this host a destination: config file, unit, the runtime
// registered with dockerd, the credentials checked.
func (a *agent) install(args []string) error {
	sf := newServeFlags()
	fs := sf.flagSet()
	serve := map[string]bool{}
	fs.VisitAll(func(fl *pflag.Flag) { serve[fl.Name] = fl.Name != "version" })
	fs.MarkHidden("version")
	var f installFlags
	f.register(fs, "install")
	if err := a.parse(fs, "install", args, 0); err != nil {
		return err
	}
	if sf.version {
		return cli.Usagef("install", "--version is not a setting of the service")
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	cfg.Settings = settingsOf(fs, serve)
	if f.root != "" {
		for _, name := range rootedServeFlags {
			cfg.Defaults = append(cfg.Defaults, cli.Setting{Key: name, Value: filepath.Join(f.root, fs.Lookup(name).DefValue)})
		}
	}
	cfg.ReadConfig = func(text []byte) (string, error) { return readServeConfig(text, cfg.ConfigFile) }
	res, err := install.Install(cfg)
	if werr := a.report(res, f.asJSON); err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	if res.DockerdReloaded {
		if err := a.awaitRuntime(cfg); err != nil {
			return err
		}
	}
	return a.afterInstall(cfg, res, f)
}

// awaitRuntime waits until the reloaded dockerd lists the runtime.
func (a *agent) awaitRuntime(cfg install.Config) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := installedServeFlags(cfg.ConfigFile)
	if err != nil {
		return err
	}
	dk, err := docker.New(f.cfg.Docker)
	if err != nil {
		return err
	}
	defer dk.Close()
	for {
		if ok, _ := dk.HasRuntime(ctx, restoreruntime.Name); ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dockerd did not pick up the %s runtime from %s", restoreruntime.Name, cfg.DaemonJSON)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// afterInstall starts the service (--now), or says how to.
func (a *agent) afterInstall(cfg install.Config, res install.Result, f installFlags) error {
	if res.DockerdNotRunning && !f.asJSON {
		fmt.Fprintf(a.stdout, "dockerd is not running (no %s): it reads the restore runtime from %s when it starts\n", cfg.PIDFile, cfg.DaemonJSON)
	}
	if !f.now {
		if !f.asJSON {
			if systemdRunning() {
				fmt.Fprintf(a.stdout, "next: systemctl daemon-reload && systemctl enable --now %s\n", install.UnitName)
			} else {
				fmt.Fprintf(a.stdout, "next: systemd is not running here; start the agent with: %s --config %s\n", filepath.Join(cfg.BinDir, "migrate-dst"), cfg.ConfigFile)
			}
		}
		return nil
	}
	steps := [][]string{{"daemon-reload"}}
	if res.Changed() {
		steps = append(steps, []string{"try-restart", install.UnitName})
	}
	return a.systemctl(append(steps, []string{"enable", "--now", install.UnitName})...)
}

// systemctl runs systemctl once for each argument list.
func (a *agent) systemctl(steps ...[]string) error {
	if !systemdRunning() {
		return errors.New("--now: systemd is not running here (no /run/systemd/system)")
	}
	for _, args := range steps {
		cmd := exec.Command("systemctl", args...)
		cmd.Stdout, cmd.Stderr = a.stdout, a.stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("systemctl %s: %w", strings.Join(args, " "), err)
		}
		fmt.Fprintf(a.stderr, "ran: systemctl %s\n", strings.Join(args, " "))
	}
	return nil
}

// systemdRunning reports whether systemd is the init system (sd_booted).
func systemdRunning() bool {
	st, err := os.Stat("/run/systemd/system")
	return err == nil && st.IsDir()
}

// uninstall undoes what install did, as its manifest records.
func (a *agent) uninstall(args []string) error {
	fs := pflag.NewFlagSet("uninstall", pflag.ContinueOnError)
	var f installFlags
	f.register(fs, "uninstall")
	if err := a.parse(fs, "uninstall", args, 0); err != nil {
		return err
	}
	cfg, err := f.config()
	if err != nil {
		return err
	}
	sf, err := installedServeFlags(cfg.ConfigFile)
	if err != nil {
		return err
	}
	if list, err := migrate.DestinationStatus(sf.cfg.WorkDir); err != nil {
		return err
	} else if len(list) > 0 {
		return fmt.Errorf("uninstall: %d migrations are under way or in doubt here (migrate-dst status --work-dir %s): let them end first", len(list), sf.cfg.WorkDir)
	}
	var inUse func() ([]string, error)
	if !f.noDocker {
		inUse = func() ([]string, error) {
			names, err := containersUsingRuntime(sf.cfg.Docker)
			if err != nil {
				err = fmt.Errorf("%w (pass --no-docker if dockerd is not running)", err)
			}
			return names, err
		}
	}
	if f.now {
		if err := a.systemctl([]string{"disable", "--now", install.UnitName}); err != nil {
			return err
		}
	}
	res, err := install.Uninstall(cfg, inUse)
	if werr := a.report(res, f.asJSON); err == nil {
		err = werr
	}
	if err == nil && f.now {
		err = a.systemctl([]string{"daemon-reload"})
	}
	return err
}

// installedServeFlags reads serve's settings from the config file at
// path; none there is serve's defaults.
func installedServeFlags(path string) (*serveFlags, error) {
	settings, err := cli.ReadConfigFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return newServeFlags(), nil
	} else if err != nil {
		return nil, err
	}
	f := newServeFlags()
	return f, cli.ApplyConfig(f.flagSet(), path, settings, configKeysReserved...)
}

// containersUsingRuntime asks dockerd which containers were created with
// the restore runtime.
func containersUsingRuntime(dockerHost string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dk, err := docker.New(dockerHost)
	if err != nil {
		return nil, err
	}
	defer dk.Close()
	return dk.ContainersUsingRuntime(ctx, restoreruntime.Name)
}

// report writes what install or uninstall did: a line per path, or JSON.
func (a *agent) report(res install.Result, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	if res.NothingInstalled {
		fmt.Fprintln(a.stdout, "nothing to uninstall: migrate-dst install recorded nothing here")
	}
	for _, c := range res.Changes {
		line := c.Action.String() + " " + c.Path
		if c.Note != "" {
			line += ": " + c.Note
		}
		fmt.Fprintln(a.stdout, line)
	}
	if res.DockerdReloaded {
		fmt.Fprintln(a.stdout, "dockerd reloaded")
	}
	return nil
}
