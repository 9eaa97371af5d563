package install

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dockmove/dockmove/internal/cli"
	"github.com/dockmove/dockmove/internal/restoreruntime"
	"github.com/dockmove/dockmove/transfer"
)

// These tests install into a temporary root: the host's own /etc and
// /var/lib are never touched, and the "dockerd" reloaded is a sleeping
// child.

// daemonJSON is a hand-written daemon.json: its spacing and key order
// are not Go's, so only a byte-for-byte restore gets it back.
const daemonJSON = "{ \"debug\" : true,\n\t\"runtimes\": {\"other\": {\"path\": \"/x\"}}, \"log-driver\": \"json-file\" }\n"

// testHost is a temporary root that looks like a host before install:
// its daemon.json, its credentials and the programs.
type testHost struct {
	root string
	cfg  Config
	tls  transfer.TLSFiles
}

func newTestHost(t *testing.T) testHost {
	t.Helper()
	root := t.TempDir()
	bundle := filepath.Join(root, "etc/dockmove/bundle")
	if err := transfer.WriteBundle(bundle, []transfer.BundleHost{{Name: "host2"}}); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(root, "etc/docker/daemon.json"), daemonJSON, 0o640)
	for _, p := range []string{"migrate-dst", "dockmove-runtime"} {
		writeTestFile(t, filepath.Join(root, "usr/bin", p), "#!/bin/sh\nexit 0\n", 0o755)
	}
	cfg := DefaultConfig(root)
	cfg.BinDir = filepath.Join(root, "usr/bin")
	tls := transfer.HostTLSFiles(filepath.Join(bundle, "host2"))
	cfg.ReadConfig = func([]byte) (string, error) { return testRuntimeState(root), CheckCredentials(tls) }
	cfg.Settings = []cli.Setting{{Key: "listen", Value: "10.0.0.2:7070"}, {Key: "allow-source", Value: "host1"}, {Key: "allow-source", Value: "host3"}}
	return testHost{root: root, cfg: cfg, tls: tls}
}

// testRuntimeState is the runtime state directory of a test's config
// files.
func testRuntimeState(root string) string { return filepath.Join(root, "var/lib/dockmove/restore") }

func writeTestFile(t *testing.T, path, data string, perm fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}

// snapshot describes every file, directory and link below root: its
// type, mode, owner and content or target.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v uid=%d gid=%d", info.Mode(), st.Uid, st.Gid)
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(data)
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, when string, before, after map[string]string) {
	t.Helper()
	for p, want := range before {
		if got, ok := after[p]; !ok {
			t.Errorf("%s: %s is gone", when, p)
		} else if got != want {
			t.Errorf("%s: %s is\n%s\nwas\n%s", when, p, got, want)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s is new", when, p)
		}
	}
}

func actions(res Result) map[string]Action {
	out := map[string]Action{}
	for _, c := range res.Changes {
		out[c.Path] = c.Action
	}
	return out
}

func TestInstallThenUninstallLeavesTheHostAsBefore(t *testing.T) {
	h := newTestHost(t)
	cfg := h.cfg
	before := snapshot(t, h.root)

	res, err := Install(cfg)
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(cfg.UnitDir, UnitName)
	want := map[string]Action{cfg.ConfigFile: Created, unit: Created, cfg.DaemonJSON: Updated}
	for p, a := range want {
		if got := actions(res)[p]; got != a {
			t.Errorf("install: %s %v, want %v", p, got, a)
		}
	}
	if !res.DockerdNotRunning || res.DockerdReloaded {
		t.Errorf("no pidfile: reloaded %v, not running %v", res.DockerdReloaded, res.DockerdNotRunning)
	}
	checkInstalled(t, cfg, testRuntimeState(h.root))
	installed := snapshot(t, h.root)

	res, err = Install(cfg)
	if err != nil || res.Changed() {
		t.Fatalf("second install: %+v, %v", res.Changes, err)
	}
	sameTree(t, "after a second install", installed, snapshot(t, h.root))

	res, err = Uninstall(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for p, a := range map[string]Action{cfg.ConfigFile: Removed, unit: Removed, cfg.DaemonJSON: Restored, cfg.Manifest: Removed,
		cfg.UnitDir: Removed, filepath.Join(h.root, "etc/systemd"): Removed, filepath.Join(h.root, "var/lib/dockmove"): Removed} {
		if got := actions(res)[p]; got != a {
			t.Errorf("uninstall: %s %v, want %v (%+v)", p, got, a, res.Changes)
		}
	}
	sameTree(t, "after uninstall", before, snapshot(t, h.root))

	if res, err = Uninstall(cfg, nil); err != nil || !res.NothingInstalled || len(res.Changes) > 0 {
		t.Fatalf("second uninstall: %+v, %v", res, err)
	}
}

// checkInstalled checks every file install writes.
func checkInstalled(t *testing.T, cfg Config, runtimeState string) {
	t.Helper()
	conf, err := os.ReadFile(cfg.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	settings, err := cli.ParseConfig(strings.NewReader(string(conf)), cfg.ConfigFile)
	var got []string
	for _, s := range settings {
		got = append(got, s.Key+"="+s.Value)
	}
	if err != nil || strings.Join(got, " ") != "listen=10.0.0.2:7070 allow-source=host1 allow-source=host3" {
		t.Errorf("config file holds %v (%v):\n%s", settings, err, conf)
	}
	unit, err := os.ReadFile(filepath.Join(cfg.UnitDir, UnitName))
	if err != nil {
		t.Fatal(err)
	}
	exec := "ExecStart=" + filepath.Join(cfg.BinDir, "migrate-dst") + " --config " + cfg.ConfigFile + "\n"
	if !strings.Contains(string(unit), exec) || !strings.Contains(string(unit), "WantedBy=multi-user.target") {
		t.Errorf("unit lacks %q:\n%s", exec, unit)
	}
	var doc struct {
		Debug     bool   `json:"debug"`
		LogDriver string `json:"log-driver"`
		Runtimes  map[string]struct {
			Path        string
			RuntimeArgs []string
		} `json:"runtimes"`
	}
	data, err := os.ReadFile(cfg.DaemonJSON)
	if err != nil || json.Unmarshal(data, &doc) != nil {
		t.Fatalf("daemon.json: %v\n%s", err, data)
	}
	rt := doc.Runtimes[restoreruntime.Name]
	if !doc.Debug || doc.LogDriver != "json-file" || doc.Runtimes["other"].Path != "/x" ||
		rt.Path != filepath.Join(cfg.BinDir, "dockmove-runtime") || strings.Join(rt.RuntimeArgs, " ") != restoreruntime.StateFlag+" "+runtimeState {
		t.Errorf("daemon.json:\n%s", data)
	}
	for path, perm := range map[string]fs.FileMode{cfg.ConfigFile: 0o644, filepath.Join(cfg.UnitDir, UnitName): 0o644, cfg.DaemonJSON: 0o640, cfg.Manifest: 0o600} {
		if st, err := os.Lstat(path); err != nil || st.Mode() != perm {
			t.Errorf("%s: mode %v, %v; want %v", path, st.Mode(), err, perm)
		}
	}
	if temps, _ := filepath.Glob(filepath.Join(filepath.Dir(cfg.DaemonJSON), ".*dockmove*")); len(temps) > 0 {
		t.Errorf("temporary files left: %v", temps)
	}
}

// TestInstallWithoutDaemonJSON: a daemon.json install made, in a
// directory it made, goes with uninstall.
func TestInstallWithoutDaemonJSON(t *testing.T) {
	h := newTestHost(t)
	if err := os.RemoveAll(filepath.Join(h.root, "etc/docker")); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, h.root)
	res, err := Install(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(res)[h.cfg.DaemonJSON]; got != Created {
		t.Fatalf("daemon.json %v, want created", got)
	}
	if _, err := Uninstall(h.cfg, nil); err != nil {
		t.Fatal(err)
	}
	sameTree(t, "after uninstall", before, snapshot(t, h.root))
}

// TestUninstallKeepsWhatChangedSince: daemon.json and the config file
// edited after install; uninstall takes only the runtime's entry out of
// daemon.json, leaves the config file, and says so.
func TestUninstallKeepsWhatChangedSince(t *testing.T) {
	h := newTestHost(t)
	cfg := h.cfg
	if _, err := Install(cfg); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(cfg.DaemonJSON)
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	doc["log-level"] = "warn"
	edited, _ := json.Marshal(doc)
	writeTestFile(t, cfg.DaemonJSON, string(edited), 0o640)
	conf, _ := os.ReadFile(cfg.ConfigFile)
	writeTestFile(t, cfg.ConfigFile, string(conf)+"deny-label = traefik.*\n", 0o644)

	res, err := Uninstall(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	notes := map[string]Change{}
	for _, c := range res.Changes {
		notes[c.Path] = c
	}
	if c := notes[cfg.DaemonJSON]; c.Action != Updated || !strings.Contains(c.Note, "only dockmove's runtime entry was removed") {
		t.Errorf("daemon.json: %+v", c)
	}
	if c := notes[cfg.ConfigFile]; c.Action != Left || !strings.Contains(c.Note, "changed") {
		t.Errorf("config file: %+v", c)
	}
	if c := notes[filepath.Dir(cfg.ConfigFile)]; c.Action != Unchanged && c.Action != 0 {
		t.Errorf("the config file's directory (not made by install): %+v", c)
	}
	data, _ = os.ReadFile(cfg.DaemonJSON)
	doc = nil
	json.Unmarshal(data, &doc)
	rts, _ := doc["runtimes"].(map[string]any)
	if doc["log-level"] != "warn" || doc["debug"] != true || rts["other"] == nil || rts[restoreruntime.Name] != nil {
		t.Errorf("daemon.json after uninstall:\n%s", data)
	}
	if st, _ := os.Stat(cfg.DaemonJSON); st.Mode().Perm() != 0o640 {
		t.Errorf("daemon.json mode %v", st.Mode())
	}
	if _, err := os.Stat(cfg.ConfigFile); err != nil {
		t.Errorf("the edited config file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.UnitDir, UnitName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the unit, unchanged since install, is still there: %v", err)
	}
}

// TestInstallRefusesSymlinks: a link planted where install reads or
// writes, or on the way there, is refused before anything is written,
// and its target is untouched.
func TestInstallRefusesSymlinks(t *testing.T) {
	for _, tc := range []struct {
		name string
		link func(cfg Config) string // where the link goes
	}{
		{"config file", func(cfg Config) string { return cfg.ConfigFile }},
		{"unit", func(cfg Config) string { return filepath.Join(cfg.UnitDir, UnitName) }},
		{"unit directory", func(cfg Config) string { return cfg.UnitDir }},
		{"daemon.json", func(cfg Config) string { return cfg.DaemonJSON }},
		{"daemon.json's directory", func(cfg Config) string { return filepath.Dir(cfg.DaemonJSON) }},
		{"manifest", func(cfg Config) string { return cfg.Manifest }},
		{"manifest's directory", func(cfg Config) string { return filepath.Dir(cfg.Manifest) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHost(t)
			path := tc.link(h.cfg)
			elsewhere := t.TempDir()
			target := filepath.Join(elsewhere, "target")
			if _, err := os.Stat(path); err == nil {
				if err := os.Rename(path, target); err != nil {
					t.Fatal(err)
				}
			} else {
				writeTestFile(t, target, "not install's\n", 0o644)
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
			before, beforeTarget := snapshot(t, h.root), snapshot(t, elsewhere)
			_, err := Install(h.cfg)
			if !errors.Is(err, ErrSymlink) || !strings.Contains(err.Error(), path) {
				t.Fatalf("install: %v, want %v naming %s", err, ErrSymlink, path)
			}
			sameTree(t, "after the refusal", before, snapshot(t, h.root))
			sameTree(t, "the link's target", beforeTarget, snapshot(t, elsewhere))
		})
	}
}

// TestInstallRefusals: what install cannot do it refuses before writing
// anything, naming what is missing.
func TestInstallRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, h *testHost)
		err    error
		says   []string
	}{
		{"no key", func(t *testing.T, h *testHost) { os.Remove(h.tls.Key) }, ErrCredentials,
			[]string{"key.pem", "migrate-dst certs --out tls --host NAME=ADDR", "--tls-dir"}},
		{"no credentials at all", func(t *testing.T, h *testHost) { os.RemoveAll(filepath.Dir(h.tls.Key)) }, ErrCredentials,
			[]string{"ca.pem", "cert.pem", "key.pem"}},
		{"key readable by others", func(t *testing.T, h *testHost) { os.Chmod(h.tls.Key, 0o644) }, ErrCredentials, []string{"key.pem"}},
		{"no runtime program", func(t *testing.T, h *testHost) { os.Remove(filepath.Join(h.cfg.BinDir, "dockmove-runtime")) }, ErrProgram,
			[]string{"dockmove-runtime", "--bin-dir"}},
		{"relative path", func(t *testing.T, h *testHost) { h.cfg.DaemonJSON = "daemon.json" }, ErrPath, []string{"daemon.json"}},
		{"path a unit cannot name", func(t *testing.T, h *testHost) { h.cfg.ConfigFile = filepath.Join(h.root, "my conf") }, ErrPath, []string{"spaces"}},
		{"daemon.json not JSON", func(t *testing.T, h *testHost) { writeTestFile(t, h.cfg.DaemonJSON, "{debug", 0o644) }, nil,
			[]string{"daemon.json", "not a JSON object"}},
		{"config file vetoed", func(t *testing.T, h *testHost) {
			h.cfg.ReadConfig = func([]byte) (string, error) { return "", errors.New("vetoed") }
		}, nil, []string{"vetoed"}},
		{"a directory where the unit goes", func(t *testing.T, h *testHost) {
			os.MkdirAll(filepath.Join(h.cfg.UnitDir, UnitName), 0o755)
		}, ErrNotRegular, []string{UnitName}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHost(t)
			tc.break_(t, &h)
			before := snapshot(t, h.root)
			_, err := Install(h.cfg)
			if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) {
				t.Fatalf("install: %v, want %v", err, tc.err)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not say %q", err, s)
				}
			}
			sameTree(t, "after the refusal", before, snapshot(t, h.root))
		})
	}
}

// TestUninstallRefusals: an enabled service, or containers that use the
// runtime, stop uninstall before it changes anything.
func TestUninstallRefusals(t *testing.T) {
	h := newTestHost(t)
	if _, err := Install(h.cfg); err != nil {
		t.Fatal(err)
	}
	wants := filepath.Join(h.cfg.UnitDir, "multi-user.target.wants", UnitName)
	os.MkdirAll(filepath.Dir(wants), 0o755)
	os.Symlink(filepath.Join(h.cfg.UnitDir, UnitName), wants)
	before := snapshot(t, h.root)
	if _, err := Uninstall(h.cfg, nil); !errors.Is(err, ErrServiceEnabled) || !strings.Contains(err.Error(), "systemctl disable --now "+UnitName) {
		t.Fatalf("enabled: %v", err)
	}
	os.RemoveAll(filepath.Dir(wants))
	if _, err := Uninstall(h.cfg, func() ([]string, error) { return []string{"web", "db"}, nil }); !errors.Is(err, ErrRuntimeInUse) || !strings.Contains(err.Error(), "web, db") {
		t.Fatalf("in use: %v", err)
	}
	if _, err := Uninstall(h.cfg, func() ([]string, error) { return nil, errors.New("no dockerd") }); err == nil || !strings.Contains(err.Error(), "no dockerd") {
		t.Fatalf("dockerd not asked: %v", err)
	}
	delete(before, "etc/systemd/system/multi-user.target.wants")
	delete(before, "etc/systemd/system/multi-user.target.wants/"+UnitName)
	sameTree(t, "after the refusals", before, snapshot(t, h.root))
}

// TestInstallKeepsThePackagedUnit: with the Debian package's unit in
// place and the same, install writes none.
func TestInstallKeepsThePackagedUnit(t *testing.T) {
	h := newTestHost(t)
	writeTestFile(t, filepath.Join(h.cfg.PackagedUnitDir, UnitName), string(Unit(h.cfg.BinDir, h.cfg.ConfigFile)), 0o644)
	if _, err := Install(h.cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(h.cfg.UnitDir, UnitName)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("install wrote a unit beside the package's: %v", err)
	}
}

// TestInstallKeepsAConfigFileWithoutSettings: given no settings, install
// keeps the config file there (the Debian package's, or one written by
// hand) and uninstall leaves it.
func TestInstallKeepsAConfigFileWithoutSettings(t *testing.T) {
	h := newTestHost(t)
	h.cfg.Settings = nil
	writeTestFile(t, h.cfg.ConfigFile, "listen = :7071\n", 0o644)
	before := snapshot(t, h.root)
	res, err := Install(h.cfg)
	if err != nil || actions(res)[h.cfg.ConfigFile] != Unchanged {
		t.Fatalf("install: %+v, %v", res.Changes, err)
	}
	if _, err := Uninstall(h.cfg, nil); err != nil {
		t.Fatal(err)
	}
	sameTree(t, "after uninstall", before, snapshot(t, h.root))
}

// TestInstallReloadsDockerd: a changed daemon.json is announced to the
// dockerd of the pidfile (here a sleeping child) with SIGHUP.
func TestInstallReloadsDockerd(t *testing.T) {
	h := newTestHost(t)
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	writeTestFile(t, h.cfg.PIDFile, fmt.Sprintln(cmd.Process.Pid), 0o644)
	res, err := Install(h.cfg)
	if err != nil || !res.DockerdReloaded {
		t.Fatalf("install: reloaded %v, %v", res.DockerdReloaded, err)
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGHUP {
		t.Fatalf("the fake dockerd ended with %v, want SIGHUP", err)
	}
}

// TestInstallResumesAHalfWayInstall: an install that stopped after
// recording a change but before making it is undone as if it had not
// happened.
func TestInstallResumesAHalfWayInstall(t *testing.T) {
	h := newTestHost(t)
	before := snapshot(t, h.root)
	if _, err := Install(h.cfg); err != nil {
		t.Fatal(err)
	}
	// As if install had stopped before writing daemon.json.
	writeTestFile(t, h.cfg.DaemonJSON, daemonJSON, 0o640)
	if _, err := Uninstall(h.cfg, nil); err != nil {
		t.Fatal(err)
	}
	sameTree(t, "after uninstall", before, snapshot(t, h.root))
}

// TestUnitVerifies runs systemd-analyze verify on the unit install
// writes.
func TestUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		skipOrFail(t, "systemd-analyze not in PATH (package systemd; run: make deps): the unit is not verified")
	}
	h := newTestHost(t)
	if _, err := Install(h.cfg); err != nil {
		t.Fatal(err)
	}
	// --man=no: the man page it names comes with the Debian package.
	out, err := exec.Command(analyze, "verify", "--man=no", filepath.Join(h.cfg.UnitDir, UnitName)).CombinedOutput()
	if err != nil || strings.Contains(string(out), UnitName) {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestMergeSettings(t *testing.T) {
	listen := []cli.Setting{{Key: "listen", Value: ":1"}}
	for _, tc := range []struct {
		name               string
		text               string
		settings, defaults []cli.Setting
		want               string
	}{
		{"new", "", nil, nil, string(DefaultConfigText())},
		{"new with settings", "", listen, nil, string(DefaultConfigText()) + "listen = :1\n"},
		{"replaces every line of a key", "# c\nlisten = :1\nallow-source = a\nallow-source = b\nwork-dir = /w\n",
			[]cli.Setting{{Key: "allow-source", Value: "c"}, {Key: "allow-source", Value: "d"}}, nil, "# c\nlisten = :1\nallow-source = c\nallow-source = d\nwork-dir = /w\n"},
		{"keeps comments that name a key", "# listen = :7070\nlisten=:2", listen, nil, "# listen = :7070\nlisten = :1\n"},
		{"appends a new key", "# c\nwork-dir = /w", listen, nil, "# c\nwork-dir = /w\nlisten = :1\n"},
		{"quotes", "x = 1\n", []cli.Setting{{Key: "restore-criu-option", Value: " spaced"}}, nil, "x = 1\nrestore-criu-option = \" spaced\"\n"},
		{"nothing to do", "listen=:2", nil, []cli.Setting{{Key: "listen", Value: ":1"}}, "listen=:2"},
		{"defaults where unset", "listen = :2\n", listen, []cli.Setting{{Key: "listen", Value: ":3"}, {Key: "tls-dir", Value: "/r/tls"}, {Key: "work-dir", Value: "/r/w"}},
			"listen = :1\ntls-dir = /r/tls\nwork-dir = /r/w\n"},
		{"the same settings", "a = 1\nlisten = :1\nb = 2", listen, nil, "a = 1\nlisten = :1\nb = 2"},
		{"defaults set already", "tls-dir = /mine\n", nil, []cli.Setting{{Key: "tls-dir", Value: "/r/tls"}}, "tls-dir = /mine\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(mergeSettings([]byte(tc.text), tc.settings, tc.defaults))
			if got != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tc.want)
			}
			if again := string(mergeSettings([]byte(got), tc.settings, tc.defaults)); again != got {
				t.Fatalf("merged twice:\n%s", again)
			}
		})
	}
}

func TestActionNames(t *testing.T) {
	for a := Unchanged; a <= Left; a++ {
		text, _ := a.MarshalText()
		var back Action
		if err := back.UnmarshalText(text); err != nil || back != a {
			t.Errorf("%v reads back as %v, %v", a, back, err)
		}
	}
	if _, err := ParseAction("moved"); err == nil {
		t.Error("an unknown action parsed")
	}
}

// skipOrFail skips for a missing prerequisite, or fails in strict mode
// (DOCKMOVE_STRICT=1, as make test runs), where it should be there.
func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("DOCKMOVE_STRICT") == "1" {
		t.Fatalf("prerequisite missing in strict mode: %s", reason)
	}
	t.Skipf("prerequisite missing: %s", reason)
}
