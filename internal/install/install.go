// Package install makes a host a migration destination, and undoes it:
// migrate-dst's systemd unit and config file, the restore runtime
// registered in dockerd's daemon.json, the credentials checked. Every
// file it changes is recorded in a manifest with what the file held
// before, so that Uninstall puts back exactly that, byte for byte, and
// removes only what Install added. Both can run again and again.
package install

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dockmove/dockmove/internal/cli"
	"github.com/dockmove/dockmove/internal/restoreruntime"
)

// UnitName is the systemd unit of the destination agent.
const UnitName = "dockmove-migrate-dst.service"

var (
	// ErrPath is a path install cannot use: not absolute, or with
	// characters a systemd unit cannot name.
	ErrPath = errors.New("install: unusable path")
	// ErrSymlink is a symbolic link where install reads or writes: it is
	// refused, never followed.
	ErrSymlink = errors.New("install: refusing a symbolic link")
	// ErrNotRegular is something other than a regular file (or a
	// directory) where install expects one.
	ErrNotRegular = errors.New("install: not a regular file")
	// ErrProgram is a program missing from the directory the unit and the
	// runtime entry name.
	ErrProgram = errors.New("install: program missing")
	// ErrCredentials is a TLS file missing or unusable.
	ErrCredentials = errors.New("install: credentials")
	// ErrRuntimeInUse refuses to unregister the restore runtime while
	// containers were created with it: they could no longer start.
	ErrRuntimeInUse = errors.New("install: containers still use the restore runtime")
	// ErrServiceEnabled refuses to uninstall while systemd would start the
	// agent.
	ErrServiceEnabled = errors.New("install: the service is enabled")
	// ErrManifest is a manifest install cannot read.
	ErrManifest = errors.New("install: bad manifest")
)

// Config says where install puts what. DefaultConfig fills every path;
// BinDir has no default.
type Config struct {
	// BinDir holds migrate-dst and dockmove-runtime, as the unit and
	// daemon.json name them (the CLI gives its own directory).
	BinDir string
	// ConfigFile is migrate-dst's config file, which the unit passes to
	// --config. Default /etc/dockmove/migrate-dst.conf.
	ConfigFile string
	// Settings are set in ConfigFile (every line of their keys replaced);
	// the file's other lines are kept. None: the file is kept as it is,
	// or made with only comments.
	Settings []cli.Setting
	// Defaults are set in ConfigFile only where it gives their keys no
	// value (the paths a --root moves).
	Defaults []cli.Setting
	// ReadConfig reads the config file install would leave as migrate-dst
	// reads it: it vets it and the credentials it names (CheckCredentials),
	// and returns the restore runtime's state directory it sets, which
	// install registers with dockerd. An error stops install before it
	// writes anything. Required.
	ReadConfig func(text []byte) (runtimeState string, err error)
	// UnitDir is where the unit is written, and where systemd records
	// that it is enabled. Default /etc/systemd/system.
	UnitDir string
	// PackagedUnitDir is where the Debian package puts the unit: when it
	// holds the one install would write, none is written. Default
	// /usr/lib/systemd/system.
	PackagedUnitDir string
	// Manifest records what install changed. Default
	// /var/lib/dockmove/install.json.
	Manifest string
	// DaemonJSON is dockerd's configuration file. Default
	// /etc/docker/daemon.json.
	DaemonJSON string
	// PIDFile is dockerd's pidfile, to reload it. Default
	// /var/run/docker.pid.
	PIDFile string
}

// DefaultConfig returns the conventional paths below root ("" or "/":
// the host's own).
func DefaultConfig(root string) Config {
	at := func(p string) string { return filepath.Join(root, p) }
	if root == "" {
		at = filepath.Clean
	}
	return Config{
		ConfigFile:      at("/etc/dockmove/migrate-dst.conf"),
		UnitDir:         at("/etc/systemd/system"),
		PackagedUnitDir: at("/usr/lib/systemd/system"),
		Manifest:        at("/var/lib/dockmove/install.json"),
		DaemonJSON:      at("/etc/docker/daemon.json"),
		PIDFile:         at("/var/run/docker.pid"),
	}
}

// Validate checks what Install needs: every path absolute, those the
// unit names fit for it, ReadConfig set.
func (c Config) Validate() error {
	if err := absolute(map[string]string{"bin dir": c.BinDir, "config file": c.ConfigFile, "unit dir": c.UnitDir,
		"packaged unit dir": c.PackagedUnitDir, "manifest": c.Manifest, "daemon.json": c.DaemonJSON, "dockerd pidfile": c.PIDFile}); err != nil {
		return err
	}
	if c.ReadConfig == nil {
		return errors.New("install: Config.ReadConfig is required")
	}
	for _, p := range []string{c.BinDir, c.ConfigFile} {
		if strings.ContainsAny(p, " \t\n\"'\\$%;") {
			return fmt.Errorf("%w: %q: a systemd unit cannot name a path with spaces, quotes, backslashes, $, %% or ;", ErrPath, p)
		}
	}
	return nil
}

// absolute refuses a path (by what it is) that is not absolute.
func absolute(paths map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(paths)) {
		if !filepath.IsAbs(paths[name]) {
			return fmt.Errorf("%w: %s %q is not an absolute path", ErrPath, name, paths[name])
		}
	}
	return nil
}

// Action is what Install or Uninstall did with a path.
type Action int

// The actions.
const (
	Unchanged Action = iota // already as wanted
	Created
	Updated
	Removed
	Restored // put back as it was before install
	Left     // install had changed it, but it is left alone: see the note
)

// actionNames are the actions' names, in the order of their values.
var actionNames = [...]string{"unchanged", "created", "updated", "removed", "restored", "left"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// ParseAction returns the action that name names.
func ParseAction(name string) (Action, error) {
	for i, n := range actionNames {
		if n == name {
			return Action(i), nil
		}
	}
	return 0, fmt.Errorf("install: unknown action %q", name)
}

// MarshalText renders the action as its name, in JSON reports.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads an action's name.
func (a *Action) UnmarshalText(text []byte) (err error) {
	*a, err = ParseAction(string(text))
	return err
}

// Change is one path's outcome.
type Change struct {
	Path   string `json:"path"`
	Action Action `json:"action"`
	// Note says why, when the action alone does not.
	Note string `json:"note,omitempty"`
}

// Result is what Install or Uninstall did.
type Result struct {
	Changes []Change `json:"changes"`
	// DockerdReloaded: daemon.json changed and dockerd was told to read
	// it again (SIGHUP).
	DockerdReloaded bool `json:"dockerd_reloaded"`
	// DockerdNotRunning: daemon.json changed, but dockerd has no pidfile;
	// it reads the file when it starts.
	DockerdNotRunning bool `json:"dockerd_not_running"`
	// NothingInstalled: Uninstall found no manifest.
	NothingInstalled bool `json:"nothing_installed"`
}

// Changed reports whether anything was created, updated, removed or
// restored.
func (r Result) Changed() bool {
	for _, c := range r.Changes {
		if c.Action != Unchanged && c.Action != Left {
			return true
		}
	}
	return false
}

func (r *Result) add(path string, a Action, note string) {
	r.Changes = append(r.Changes, Change{Path: path, Action: a, Note: note})
}

// reloadDockerd tells dockerd to read daemon.json again, if it runs.
func (r *Result) reloadDockerd(pidFile string) error {
	if _, err := os.Stat(pidFile); errors.Is(err, os.ErrNotExist) {
		r.DockerdNotRunning = true
		return nil
	}
	if err := restoreruntime.Reload(pidFile); err != nil {
		return fmt.Errorf("install: %w", err)
	}
	r.DockerdReloaded = true
	return nil
}

// Enabled reports whether systemd would start the agent: a link to its
// unit in one of UnitDir's .wants directories.
func Enabled(unitDir string) (bool, error) {
	links, err := filepath.Glob(filepath.Join(unitDir, "*.wants", UnitName))
	return len(links) > 0, err
}

// Install makes the host a destination: it checks the programs and the
// config file (ReadConfig), then writes the config file, the unit (unless the Debian
// package's is the same) and the runtime's entry in daemon.json, each
// only if it differs, and reloads dockerd if daemon.json changed. It
// neither enables nor starts the service.
func Install(cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if err := checkPrograms(cfg.BinDir); err != nil {
		return Result{}, err
	}
	var res Result
	steps, err := plan(cfg, &res)
	if err != nil {
		return res, err
	}
	m, err := loadManifest(cfg.Manifest)
	if err != nil {
		return res, err
	}
	daemonChanged := false
	for _, s := range steps {
		ch, err := m.put(s)
		if err != nil {
			return res, err
		}
		res.Changes = append(res.Changes, ch)
		daemonChanged = daemonChanged || (s.kind == kindDaemonJSON && ch.Action != Unchanged)
	}
	if daemonChanged {
		return res, res.reloadDockerd(cfg.PIDFile)
	}
	return res, nil
}

// plan returns what each file install writes should hold, from what they
// hold now; nothing is written.
func plan(cfg Config, res *Result) ([]step, error) {
	conf, err := readFile(cfg.ConfigFile)
	if err != nil {
		return nil, err
	}
	confText := mergeSettings(conf.data, cfg.Settings, cfg.Defaults)
	runtimeState, err := cfg.ReadConfig(confText)
	if err != nil {
		return nil, err
	}
	steps := []step{{path: cfg.ConfigFile, kind: kindConfig, data: confText, perm: 0o644}}

	unit := Unit(cfg.BinDir, cfg.ConfigFile)
	packaged := filepath.Join(cfg.PackagedUnitDir, UnitName)
	if st, err := readFile(packaged); err != nil {
		return nil, err
	} else if st.exists && string(st.data) == string(unit) {
		res.add(packaged, Unchanged, "the Debian package's unit, as install would write it")
	} else {
		steps = append(steps, step{path: filepath.Join(cfg.UnitDir, UnitName), kind: kindUnit, data: unit, perm: 0o644})
	}

	daemon, err := readFile(cfg.DaemonJSON)
	if err != nil {
		return nil, err
	}
	data, changed, err := restoreruntime.Register(daemon.data, filepath.Join(cfg.BinDir, "dockmove-runtime"), runtimeState)
	if err != nil {
		return nil, fmt.Errorf("install: %s: %w", cfg.DaemonJSON, err)
	}
	if !changed {
		data = daemon.data
	}
	steps = append(steps, step{path: cfg.DaemonJSON, kind: kindDaemonJSON, data: data, perm: 0o644})
	// A link or a directory where a file goes is refused now, before
	// anything is written.
	for _, s := range steps {
		if _, err := readFile(s.path); err != nil {
			return nil, err
		}
	}
	if _, err := readFile(cfg.Manifest); err != nil {
		return nil, err
	}
	return steps, nil
}
