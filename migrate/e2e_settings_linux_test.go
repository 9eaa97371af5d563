package migrate_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
)

// settingsArgs are `docker run` options a user sets, each of which must
// hold on host2 as on host1 (issue: the same container on host2).
var settingsArgs = []string{
	"--memory", "300m", "--memory-swap", "600m", "--cpus", "0.5", "--cpu-shares", "512",
	"--pids-limit", "100", "--ulimit", "nofile=1024:2048",
	"--health-cmd", "test -d /proc/1", "--health-interval", "1s", "--health-retries", "2",
	"--tmpfs", "/scratch:size=16m", "--shm-size", "32m",
	"--dns", "10.77.0.1", "--dns-search", "lab.example", "--add-host", "db.lab.example:10.77.0.5",
	"--log-opt", "max-size=1m", "--log-opt", "max-file=2",
	"--security-opt", "no-new-privileges", "--stop-timeout", "7", "--stop-signal", "SIGTERM",
	"--cap-drop", "MKNOD", "--oom-score-adj", "100", "--group-add", "10",
	"--env", "SETTING=kept", "--workdir", "/data", "--hostname", "settings-host",
	"--label", "team=storage", "--restart", "unless-stopped", "--init",
}

// mayDiffer are the inspect fields that differ on host2 by design.
var mayDiffer = map[string]string{
	"HostConfig.Runtime": "host2 restores through the restore runtime, then points the container back at runc",
	"Config.Labels":      "host2 adds the migration's label (compared without it below)",
	"Config.MacAddress":  "Docker < 1.44 takes the MAC at the container level; host1 had it on the endpoint",
	// Each Docker's own defaults, which host2 applies: a newer Docker masks
	// more of /proc and /sys (Docker 28 adds /proc/interrupts and
	// /sys/devices/virtual/powercap to 20.10's list).
	"HostConfig.MaskedPaths":   "host2's Docker's defaults",
	"HostConfig.ReadonlyPaths": "host2's Docker's defaults",
}

// TestSettingsTravel: a container run with limits, a healthcheck, a tmpfs,
// DNS and host entries, log options, no-new-privileges, a stop timeout and
// signal, a shm size, a dropped capability, an OOM score, an extra group,
// environment, working directory, hostname, labels, a restart policy and
// docker-init as PID 1 is migrated with each strategy. On host2 `docker inspect` equals host1's in
// Config and HostConfig, field by field (generically: a field Docker adds
// later shows up here), except the commented mayDiffer list; the limits are
// in the restored container's cgroup and process limits, and its
// healthcheck runs and reports healthy.
func TestSettingsTravel(t *testing.T) {
	e := setup(t)
	for _, strategy := range []string{"stop-and-copy", "lazy"} {
		t.Run(strategy, func(t *testing.T) {
			ctx := ctxFor(t, 3*time.Minute)
			startDst(t, e)
			name := unique("settings")
			// Little memory: this test is about settings (memory moving
			// is TestMigrateWorkload's), and under --cpus 0.5 the VM
			// tier's emulated CPU made 64 MiB of post-copy take minutes.
			addr := runWorkloadMiB(t, ctx, e, name, lab.WorkloadImage, 16, 100, settingsArgs...)
			before := inspectSettings(t, ctx, e.h1, name)
			limitsBefore := processLimits(t, ctx, e.h1, name)
			start := time.Now()
			report, stderr, err := runSrc(ctx, e, name, nil, "--strategy", strategy)
			if err != nil {
				t.Fatalf("migrate: %v\n%s", err, stderr)
			}
			t.Logf("migrated in %v (stages %v)", time.Since(start), report.Stages)
			if v := waitBeat(t, ctx, addr, 0); v.Bad != 0 {
				t.Fatalf("on host2: %+v", v)
			}
			t.Logf("answering on host2 %v after the migration began", time.Since(start))
			after := inspectSettings(t, ctx, e.h2, name)
			delete(after["Config.Labels"].(map[string]any), "org.dockmove.migration")
			var diffs []string
			for _, k := range union(before, after) {
				if _, ok := mayDiffer[k]; ok && k != "Config.Labels" {
					continue
				}
				if !reflect.DeepEqual(before[k], after[k]) {
					diffs = append(diffs, fmt.Sprintf("%s: host1 %v, host2 %v", k, before[k], after[k]))
				}
			}
			if len(diffs) > 0 {
				t.Fatalf("docker inspect differs on host2 in %d places:\n%s", len(diffs), strings.Join(diffs, "\n"))
			}
			pid, err := e.h2.Docker(ctx, "inspect", "-f", "{{.State.Pid}}", name)
			if err != nil {
				t.Fatal(err)
			}
			pid = strings.TrimSpace(pid)
			if got := cgroupValue(t, pid, "memory", "memory.limit_in_bytes", "memory.max"); got != fmt.Sprint(300<<20) {
				t.Errorf("memory limit in host2's cgroup: %s", got)
			}
			if got := cgroupValue(t, pid, "pids", "pids.max", "pids.max"); got != "100" {
				t.Errorf("pids limit in host2's cgroup: %s", got)
			}
			// The ulimit's hard limit holds, and every limit is the
			// original's (Go raises its soft open-files limit to 2047).
			limits := processLimits(t, ctx, e.h2, name)
			if !strings.Contains(limits, "Max open files") || !strings.Contains(limits, " 2048 ") {
				t.Errorf("open-files limit of the restored process:\n%s", limits)
			}
			if limits != limitsBefore {
				t.Errorf("process limits differ:\nhost1:\n%s\nhost2:\n%s", limitsBefore, limits)
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				health, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.State.Health.Status}}", name)
				if strings.TrimSpace(health) == "healthy" {
					t.Logf("healthy on host2 %v after the migration began", time.Since(start))
					break
				}
				if time.Now().After(deadline) {
					probes, _ := e.h2.Docker(ctx, "inspect", "-f", "{{json .State.Health}}", name)
					t.Fatalf("healthcheck on host2: %q after 30 s: %s", health, probes)
				}
				time.Sleep(500 * time.Millisecond)
			}
		})
	}
}

// inspectSettings returns a container's Config and HostConfig as
// "Config.Field" / "HostConfig.Field" -> value.
func inspectSettings(t *testing.T, ctx context.Context, h lab.Host, name string) map[string]any {
	t.Helper()
	out, err := h.Docker(ctx, "inspect", "-f", "{{json .Config}}\n{{json .HostConfig}}", name)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(strings.TrimSpace(out), "\n", 2)
	if len(parts) != 2 {
		t.Fatalf("inspect: %q", out)
	}
	flat := map[string]any{}
	for i, prefix := range []string{"Config.", "HostConfig."} {
		var m map[string]any
		if err := json.Unmarshal([]byte(parts[i]), &m); err != nil {
			t.Fatal(err)
		}
		for k, v := range m {
			flat[prefix+k] = unsetIsNil(v)
		}
		for _, k := range []string{"HostConfig.CapAdd", "HostConfig.CapDrop"} {
			// Docker 28 stores capabilities as CAP_X when its API client is
			// recent (this agent's), as given (X) for older clients (the
			// 20.10 CLI): one capability, two spellings.
			if caps, ok := flat[k].([]any); ok {
				for i, c := range caps {
					caps[i] = strings.TrimPrefix(fmt.Sprint(c), "CAP_")
				}
			}
		}
	}
	return flat
}

// unsetIsNil maps an empty list or object to nil: Docker reports a
// setting given as empty ([] from the CLI) and one never given (null from
// the API) differently, and both set nothing.
func unsetIsNil(v any) any {
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			return nil
		}
	case map[string]any:
		if len(x) == 0 {
			return nil
		}
	}
	return v
}

// processLimits returns /proc/PID/limits of the container's init.
func processLimits(t *testing.T, ctx context.Context, h lab.Host, name string) string {
	t.Helper()
	pid, err := h.Docker(ctx, "inspect", "-f", "{{.State.Pid}}", name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("/proc", strings.TrimSpace(pid), "limits"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func union(a, b map[string]any) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// cgroupValue reads a file of process pid's cgroup: v1's controller
// hierarchy, or v2's unified one.
func cgroupValue(t *testing.T, pid, controller, v1File, v2File string) string {
	t.Helper()
	v, err := readCgroupValue(pid, controller, v1File, v2File)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// readCgroupValue is cgroupValue's reading, for callers off the test's
// goroutine.
func readCgroupValue(pid, controller, v1File, v2File string) (string, error) {
	data, err := os.ReadFile(filepath.Join("/proc", pid, "cgroup"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		var p string
		switch {
		case strings.Contains(","+f[1]+",", ","+controller+","):
			p = filepath.Join("/sys/fs/cgroup", controller, f[2], v1File)
		case f[0] == "0" && f[1] == "":
			p = filepath.Join("/sys/fs/cgroup", f[2], v2File)
		default:
			continue
		}
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b)), nil
		}
	}
	return "", fmt.Errorf("no %s cgroup for pid %s:\n%s", controller, pid, data)
}

// TestNetworkNoneMoves: a container without a network (`--network none`)
// moves and goes on counting where it was (it used to fail: "network none
// has no IPv4 subnet").
func TestNetworkNoneMoves(t *testing.T) {
	e := setup(t)
	startDst(t, e)
	ctx := ctxFor(t, 2*time.Minute)
	name := unique("nonet")
	if _, err := e.h1.Docker(ctx, "run", "-d", "--pull", "never", "--name", name, "--network", "none", lab.BusyboxImage,
		"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, h := range []lab.Host{e.h1, e.h2} {
			cleanupDocker(h, "rm", "-f", name)
		}
	})
	count := func(h lab.Host) int {
		out, err := h.Docker(ctx, "exec", name, "cat", "/tmp/count")
		if err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		var n int
		fmt.Sscan(out, &n)
		return n
	}
	time.Sleep(2 * time.Second) // a counter near 20: a fresh start would show far less
	before := count(e.h1)
	if _, stderr, err := runSrc(ctx, e, name, nil); err != nil {
		t.Fatalf("migrate: %v\n%s", err, stderr)
	}
	time.Sleep(300 * time.Millisecond)
	if after := count(e.h2); after <= before {
		t.Fatalf("counter on host2 %d, was %d on host1: the shell did not go on", after, before)
	}
	mode, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.HostConfig.NetworkMode}}", name)
	if strings.TrimSpace(mode) != "none" {
		t.Fatalf("network mode on host2: %q", mode)
	}
}

// settingTheDestinationLacks: a container with a setting that host2's
// older Docker would ignore (a healthcheck's start interval, API 1.44:
// Docker 25) is refused before anything is frozen, naming the setting and
// both API versions; it runs on where it was and host2 keeps nothing.
func settingTheDestinationLacks(t *testing.T, e env) {
	ctx := ctxFor(t, 2*time.Minute)
	startDst(t, e)
	name := unique("newer")
	runIdleCmd(t, ctx, e, name, []string{"--network", e.h1.Network,
		"--health-cmd", "true", "--health-start-period", "30s", "--health-start-interval", "1s"}, "while sleep 1; do :; done")
	r, stderr, err := runSrc(ctx, e, name, nil)
	if err == nil || !strings.Contains(stderr, "Healthcheck.StartInterval (needs Docker API 1.44; this host's Docker speaks 1.41") {
		t.Fatalf("a start interval for Docker 20.10: err %v, want a refusal naming it:\n%s", err, stderr)
	}
	if _, frozen := r.Stages["dump"]; frozen {
		t.Fatalf("refused only after the dump began: stages %v", r.Stages)
	}
	if state, _ := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Running}} {{.State.Paused}}", name); state != "true false" {
		t.Fatalf("on %s after the refusal: running, paused = %s", e.h1.Name, state)
	}
	assertHost2Clean(t, ctx, e, name, true)

	// A volume's subdirectory (volume-subpath, API 1.45) would show the
	// whole volume on host2: refused by the source, naming it.
	vol := unique("subpath")
	if _, err := e.h1.Docker(ctx, "run", "--rm", "--pull", "never", "-v", vol+":/v", lab.BusyboxImage, "mkdir", "/v/sub"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupDocker(e.h1, "volume", "rm", "-f", vol) })
	name = unique("subpath")
	runIdleCmd(t, ctx, e, name, []string{"--network", e.h1.Network,
		"--mount", "type=volume,src=" + vol + ",dst=/data,volume-subpath=sub"}, "while sleep 1; do :; done")
	_, stderr, err = runSrc(ctx, e, name, nil)
	if err == nil || !strings.Contains(stderr, "/data mounts the subdirectory sub of volume "+vol) {
		t.Fatalf("a volume's subdirectory: err %v, want a refusal naming it:\n%s", err, stderr)
	}
	assertHost2Clean(t, ctx, e, name, true)
}
