package restoreruntime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// InstallConfig says where the runtime goes and which dockerd learns of it.
type InstallConfig struct {
	// Source is the runtime binary to install (a build of cmd/dockmove-runtime).
	Source string
	// Binary is where it is installed. Default /usr/local/bin/dockmove-runtime.
	Binary string
	// State is the runtime's state directory (restore plans). Default
	// DefaultStateDir.
	State string
	// DaemonJSON is dockerd's configuration file. Default /etc/docker/daemon.json.
	DaemonJSON string
	// PIDFile is dockerd's pidfile, to reload it. Default /var/run/docker.pid.
	PIDFile string
}

// DefaultInstallConfig returns the documented defaults (Source unset).
func DefaultInstallConfig() InstallConfig {
	return InstallConfig{
		Binary:     "/usr/local/bin/dockmove-runtime",
		State:      DefaultStateDir,
		DaemonJSON: "/etc/docker/daemon.json",
		PIDFile:    "/var/run/docker.pid",
	}
}

// runtimeEntry is the daemon.json "runtimes" entry for the runtime.
type runtimeEntry struct {
	Path        string   `json:"path"`
	RuntimeArgs []string `json:"runtimeArgs"`
}

// Install copies the runtime binary, registers it in daemon.json (keeping
// every other setting, after backing the file up) and reloads dockerd. It
// changes nothing, and reports false, when all is already in place.
func Install(cfg InstallConfig) (changed bool, err error) {
	if cfg.Source == "" {
		return false, errors.New("restore runtime: install: no runtime binary given")
	}
	if err := os.MkdirAll(cfg.State, 0o700); err != nil {
		return false, err
	}
	binChanged, err := installBinary(cfg.Source, cfg.Binary)
	if err != nil {
		return false, err
	}
	jsonChanged, err := mergeDaemonJSON(cfg.DaemonJSON, func(old []byte) ([]byte, bool, error) {
		return Register(old, cfg.Binary, cfg.State)
	})
	if err != nil {
		return false, err
	}
	if jsonChanged {
		if err := Reload(cfg.PIDFile); err != nil {
			return true, err
		}
	}
	return binChanged || jsonChanged, nil
}

// Uninstall removes the runtime from daemon.json and reloads dockerd. It
// refuses while inUse names containers created with the runtime: Docker
// cannot change a container's runtime, so they would no longer start.
func Uninstall(cfg InstallConfig, inUse []string) error {
	if len(inUse) > 0 {
		return fmt.Errorf("restore runtime: containers still use the %s runtime: %s", Name, strings.Join(inUse, ", "))
	}
	changed, err := mergeDaemonJSON(cfg.DaemonJSON, Unregister)
	if err != nil || !changed {
		return err
	}
	return Reload(cfg.PIDFile)
}

// Register returns daemonJSON, dockerd's configuration (empty: none),
// with the runtime registered at binary with state directory state,
// every other setting kept; changed is false when it already was.
func Register(daemonJSON []byte, binary, state string) (out []byte, changed bool, err error) {
	want := runtimeEntry{Path: binary, RuntimeArgs: []string{StateFlag, state}}
	return editRuntimes(daemonJSON, func(runtimes map[string]json.RawMessage) (bool, error) {
		var have runtimeEntry
		if raw, ok := runtimes[Name]; ok && json.Unmarshal(raw, &have) == nil &&
			have.Path == want.Path && strings.Join(have.RuntimeArgs, "\x00") == strings.Join(want.RuntimeArgs, "\x00") {
			return false, nil
		}
		raw, err := json.Marshal(want)
		runtimes[Name] = raw
		return true, err
	})
}

// Unregister returns daemonJSON without the runtime, every other setting
// kept; changed is false when it held none.
func Unregister(daemonJSON []byte) (out []byte, changed bool, err error) {
	return editRuntimes(daemonJSON, func(runtimes map[string]json.RawMessage) (bool, error) {
		_, ok := runtimes[Name]
		delete(runtimes, Name)
		return ok, nil
	})
}

func installBinary(src, dst string) (bool, error) {
	want, err := os.ReadFile(src)
	if err != nil {
		return false, fmt.Errorf("restore runtime: read runtime binary: %w", err)
	}
	if have, err := os.ReadFile(dst); err == nil && bytes.Equal(have, want) {
		return false, nil
	}
	// A file of its own, renamed over dst: a run that dockerd has started
	// keeps the old one, and two installs at once never write one file.
	tmp, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".new-")
	if err != nil {
		return false, err
	}
	_, err = tmp.Write(want)
	if err == nil {
		err = tmp.Chmod(0o755)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return false, err
	}
	return true, nil
}

// mergeDaemonJSON rewrites daemon.json with edit (given its content, or
// nothing if there is none). The old file is kept as
// daemon.json.dockmove-backup-<unix time> when it changes.
func mergeDaemonJSON(path string, edit func([]byte) ([]byte, bool, error)) (bool, error) {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	out, changed, err := edit(old)
	if err != nil {
		return false, fmt.Errorf("restore runtime: %s: %w", path, err)
	}
	if !changed {
		return false, nil
	}
	if _, statErr := os.Stat(path); statErr == nil {
		backup := path + ".dockmove-backup-" + strconv.FormatInt(time.Now().Unix(), 10)
		if err := os.WriteFile(backup, old, 0o644); err != nil {
			return false, err
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	tmp := path + ".dockmove-new"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return false, err
	}
	return true, os.Rename(tmp, path)
}

// editRuntimes applies edit to the "runtimes" object of daemonJSON,
// keeping every other key as it was (an empty object is dropped), and returns the new document
// (indented, newline-terminated) if edit changed it.
func editRuntimes(daemonJSON []byte, edit func(map[string]json.RawMessage) (bool, error)) ([]byte, bool, error) {
	if len(bytes.TrimSpace(daemonJSON)) == 0 {
		daemonJSON = []byte("{}")
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(daemonJSON, &doc); err != nil {
		return nil, false, fmt.Errorf("not a JSON object: %w", err)
	}
	if doc == nil {
		doc = map[string]json.RawMessage{}
	}
	runtimes := map[string]json.RawMessage{}
	if raw, ok := doc["runtimes"]; ok {
		if err := json.Unmarshal(raw, &runtimes); err != nil {
			return nil, false, fmt.Errorf("runtimes: %w", err)
		}
	}
	changed, err := edit(runtimes)
	if err != nil || !changed {
		return nil, false, err
	}
	if len(runtimes) == 0 {
		// Nothing else registered: no "runtimes" key at all, as before
		// dockmove's was added to a daemon.json without one.
		delete(doc, "runtimes")
	} else if doc["runtimes"], err = json.Marshal(runtimes); err != nil {
		return nil, false, err
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, false, err
	}
	return append(out, '\n'), true, nil
}

// Reload sends SIGHUP to the dockerd whose pidfile is pidFile: it rereads
// its runtimes.
func Reload(pidFile string) error {
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return fmt.Errorf("restore runtime: reload dockerd: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return fmt.Errorf("restore runtime: reload dockerd: pidfile %s: %w", pidFile, err)
	}
	return syscall.Kill(pid, syscall.SIGHUP)
}
