package restoreruntime

import (
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestParseSplitsRuntimeArgsGlobalFlagsAndCommand(t *testing.T) {
	tests := []struct {
		name string
		argv []string
		want Invocation
	}{
		{"containerd create", []string{"--dockmove-state", "/s", "--root", "/run/r", "--log", "/l.json", "--log-format", "json", "create", "--bundle", "/b", "--pid-file", "/p", "id1"},
			Invocation{State: "/s", Global: []string{"--root", "/run/r", "--log", "/l.json", "--log-format", "json"}, Command: "create", Args: []string{"--bundle", "/b", "--pid-file", "/p", "id1"}}},
		{"state flag with equals", []string{"--dockmove-state=/x", "--systemd-cgroup", "start", "id"},
			Invocation{State: "/x", Global: []string{"--systemd-cgroup"}, Command: "start", Args: []string{"id"}}},
		{"default state", []string{"--debug", "delete", "id"},
			Invocation{State: DefaultStateDir, Global: []string{"--debug"}, Command: "delete", Args: []string{"id"}}},
		{"no command", []string{"--version"}, Invocation{State: DefaultStateDir, Global: []string{"--version"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.argv)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if _, err := Parse([]string{"--dockmove-state"}); err == nil {
		t.Fatal("missing state value accepted")
	}
}

func TestParseCreate(t *testing.T) {
	c, err := parseCreate([]string{"--bundle", "/b", "--pid-file=/p", "--console-socket", "/c.sock", "--no-pivot", "--preserve-fds", "2", "cid"})
	if err != nil || c != (createArgs{id: "cid", bundle: "/b", pidFile: "/p", consoleSocket: "/c.sock"}) {
		t.Fatalf("got %+v, %v", c, err)
	}
	for _, bad := range [][]string{{"--bundle"}, {"--bundle", "/b"}, {"a", "b"}} {
		if _, err := parseCreate(bad); err == nil {
			t.Errorf("parseCreate(%q) accepted", bad)
		}
	}
}

func TestPrepareRestoreWritesConfigAndAnnotation(t *testing.T) {
	dir, bundle := t.TempDir(), t.TempDir()
	spec := `{"ociVersion":"1.0.2","process":{"args":["/w"]},"annotations":{"keep":"me"}}`
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	inv := Invocation{Global: []string{"--root", "/r"}}
	c := createArgs{id: "cid", bundle: bundle, pidFile: "/p", consoleSocket: "/sock"}
	args, err := prepareRestore(inv, c, dir, Plan{TCPEstablished: true, FileLocks: true, CRIUOptions: []string{"mntns-compat-mode", "tcp-close"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "--root /r restore --detach --image-path " + dir + "/images --work-path " + dir + "/work --bundle " + bundle +
		" --manage-cgroups-mode soft --pid-file /p --console-socket /sock --tcp-established --file-locks cid"
	if got := strings.Join(args, " "); got != want {
		t.Fatalf("runc args:\n got %s\nwant %s", got, want)
	}
	conf, _ := os.ReadFile(filepath.Join(dir, CRIUConfig))
	if string(conf) != "mntns-compat-mode\ntcp-close\n" {
		t.Fatalf("criu config %q", conf)
	}
	var out struct {
		OCIVersion  string            `json:"ociVersion"`
		Annotations map[string]string `json:"annotations"`
	}
	data, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if out.OCIVersion != "1.0.2" || out.Annotations["keep"] != "me" || out.Annotations[criuConfigAnnotation] != filepath.Join(dir, CRIUConfig) {
		t.Fatalf("bundle after annotation: %s", data)
	}
}

func TestWritePlanRefusesMultiLineOptions(t *testing.T) {
	if err := WritePlan(t.TempDir(), Plan{CRIUOptions: []string{"a\nexec-cmd evil"}}); err == nil {
		t.Fatal("accepted an option that injects a second config line")
	}
}

func TestContainerDirRefusesPathIDs(t *testing.T) {
	for _, id := range []string{"", ".", "..", "a/b", "../x"} {
		if _, err := ContainerDir("/s", id); err == nil {
			t.Errorf("accepted id %q", id)
		}
	}
}

// TestInstallMergesDaemonJSONWithFakeDockerd installs into a temporary
// daemon.json; the "dockerd" it reloads (SIGHUP) is a sleeping child, so no
// real daemon is touched. The real install is exercised by make lab-up.
func TestInstallMergesDaemonJSONWithFakeDockerd(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "runtime-build")
	os.WriteFile(src, []byte("binary v1"), 0o755)
	daemon := filepath.Join(dir, "daemon.json")
	os.WriteFile(daemon, []byte(`{"debug": true, "runtimes": {"other": {"path": "/x"}}}`), 0o644)
	pidfile := filepath.Join(dir, "docker.pid")
	os.WriteFile(pidfile, []byte(startSleeper(t)), 0o644)
	cfg := InstallConfig{Source: src, Binary: filepath.Join(dir, "bin", "dockmove-runtime"), State: filepath.Join(dir, "state"), DaemonJSON: daemon, PIDFile: pidfile}
	os.MkdirAll(filepath.Dir(cfg.Binary), 0o755)

	changed, err := Install(cfg)
	if err != nil || !changed {
		t.Fatalf("first install: %v, changed=%v", err, changed)
	}
	var doc map[string]any
	data, _ := os.ReadFile(daemon)
	json.Unmarshal(data, &doc)
	rts := doc["runtimes"].(map[string]any)
	if doc["debug"] != true || rts["other"] == nil || rts[Name] == nil {
		t.Fatalf("daemon.json lost settings: %s", data)
	}
	if backups, _ := filepath.Glob(daemon + ".dockmove-backup-*"); len(backups) != 1 {
		t.Fatalf("backups: %v", backups)
	}
	if changed, err := Install(cfg); err != nil || changed {
		t.Fatalf("second install changed something: %v, %v", changed, err)
	}
	if err := Uninstall(cfg, []string{"web"}); err == nil || !strings.Contains(err.Error(), "web") {
		t.Fatalf("uninstall with a user: %v", err)
	}
	if err := Uninstall(cfg, nil); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(daemon)
	if strings.Contains(string(data), Name) || !strings.Contains(string(data), "other") {
		t.Fatalf("after uninstall: %s", data)
	}
}

// An --init restore binds the source's docker-init where Docker binds its
// own, and only there; a bundle without that mount is refused.
func TestPrepareRestoreBindsTheSourcesInit(t *testing.T) {
	for _, c := range []struct {
		name, mounts string
		ok           bool
	}{
		{"docker's init mount", `[{"destination":"/etc/hosts","source":"/h","type":"bind"},{"destination":"/sbin/docker-init","source":"/usr/bin/docker-init","type":"bind","options":["bind","ro"]}]`, true},
		{"no init mount", `[{"destination":"/etc/hosts","source":"/h","type":"bind"}]`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, bundle := t.TempDir(), t.TempDir()
			spec := `{"ociVersion":"1.0.2","mounts":` + c.mounts + `}`
			if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(spec), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := prepareRestore(Invocation{}, createArgs{id: "cid", bundle: bundle}, dir, Plan{Init: true})
			if (err == nil) != c.ok {
				t.Fatalf("err %v, want ok=%v", err, c.ok)
			}
			if !c.ok {
				return
			}
			var out struct {
				Mounts []struct{ Destination, Source string }
			}
			data, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
			json.Unmarshal(data, &out)
			want := map[string]string{"/etc/hosts": "/h", InitMount: filepath.Join(dir, "init", "docker-init")}
			for _, m := range out.Mounts {
				if want[m.Destination] != m.Source {
					t.Fatalf("mount %s from %s after the edit: %s", m.Destination, m.Source, data)
				}
			}
		})
	}
}

// TestRuntimeLogIsRotated: the runtime's log, written at every Docker
// command on a container that uses it, becomes runtime.log.1 once over
// logKeep and starts again; below it, it is appended to.
func TestRuntimeLogIsRotated(t *testing.T) {
	state := t.TempDir()
	path := filepath.Join(state, LogFile)
	openLog(state).Info("first")
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "first") {
		t.Fatalf("log: %q", b)
	}
	if err := os.WriteFile(path, make([]byte, logKeep+1), 0o600); err != nil {
		t.Fatal(err)
	}
	openLog(state).Info("after the rotation")
	old, err := os.Stat(path + ".1")
	if err != nil || old.Size() != logKeep+1 {
		t.Fatalf("rotated log: %v, %v", old, err)
	}
	if b, _ := os.ReadFile(path); len(b) > 200 || !strings.Contains(string(b), "after the rotation") {
		t.Fatalf("new log: %d bytes", len(b))
	}
}

// A second create of a container whose plan was used, before migrate-dst
// ends the migration, is refused (dockerd restarting the container after a
// restart of its own would otherwise get a fresh copy beside the original
// on the source); without state here, create is runc's.
func TestCreateAfterTheRestoreRefusedUntilTheMigrationEnds(t *testing.T) {
	state := t.TempDir()
	dir, err := ContainerDir(state, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{PlanFile, ConsumedFile} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	inv := Invocation{State: state, Command: "create", Args: []string{"--bundle", t.TempDir(), "c1"}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if code, handled := maybeRestore(inv, log); !handled || code == 0 {
		t.Fatalf("create after the restore: code %d, handled %v; want refused", code, handled)
	}
	RemoveState(dir)
	if code, handled := maybeRestore(inv, log); handled {
		t.Fatalf("create once the migration ended: code %d, handled; want runc's", code)
	}
}

// Installs of one binary at once (the lab registers the runtime with its
// dockerds side by side; two share one path) each leave the whole binary
// and no temporary file.
func TestInstallBinaryAtOnce(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "bin", "runtime")
	want := strings.Repeat("runtime binary ", 1<<16)
	if err := os.WriteFile(src, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Dir(dst), 0o755)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := installBinary(src, dst)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(dst)
	if err != nil || string(got) != want {
		t.Fatalf("installed %d bytes, want %d (%v)", len(got), len(want), err)
	}
	if info, _ := os.Stat(dst); info.Mode().Perm() != 0o755 {
		t.Errorf("mode %v", info.Mode())
	}
	if ents, _ := os.ReadDir(filepath.Dir(dst)); len(ents) != 1 {
		t.Errorf("left beside it: %v", ents)
	}
}
