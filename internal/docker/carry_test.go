package docker

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
	"github.com/docker/go-units"

	"github.com/dockmove/dockmove/protocol"
)

// sourceSettings returns what a source sends for a container run with
// limits, a healthcheck, DNS, log options and no-new-privileges, changed by
// mod: Docker's own structures, marshalled as inspect reports them.
func sourceSettings(t *testing.T, mod func(*container.Config, *container.HostConfig)) protocol.ContainerSpec {
	t.Helper()
	pids := int64(100)
	cfg := &container.Config{
		Hostname: "web", Image: "app:1", Cmd: []string{"serve"}, Env: []string{"A=1"},
		Healthcheck: &container.HealthConfig{Test: []string{"CMD", "true"}},
		StopTimeout: new(int), Volumes: map[string]struct{}{"/data": {}}, Labels: map[string]string{"x": "y"},
	}
	*cfg.StopTimeout = 7
	host := &container.HostConfig{
		Runtime: "runc", NetworkMode: "lan", IpcMode: "private", CgroupnsMode: "host",
		CapAdd: []string{"SYS_ADMIN"}, ShmSize: 32 << 20, DNS: []string{"10.0.0.1"}, ExtraHosts: []string{"db:10.0.0.9"},
		SecurityOpt: []string{"no-new-privileges"}, Tmpfs: map[string]string{"/scratch": "size=16m"},
		LogConfig:   container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m"}},
		MaskedPaths: []string{"/proc/kcore"}, ConsoleSize: [2]uint{24, 80},
		PortBindings: nat.PortMap{"7000/tcp": {{HostIP: "127.0.0.1", HostPort: "18080"}}}, PublishAllPorts: true,
		Resources: container.Resources{Memory: 300 << 20, MemorySwap: 600 << 20, NanoCPUs: 5e8, PidsLimit: &pids,
			Ulimits: []*units.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}}},
	}
	if mod != nil {
		mod(cfg, host)
	}
	c, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h, err := json.Marshal(host)
	if err != nil {
		t.Fatal(err)
	}
	return protocol.ContainerSpec{Name: "web", ImageID: "sha256:abc", Labels: map[string]string{"x": "y"},
		RestartPolicy: "always", DockerConfig: c, DockerHostConfig: h,
		Networks: []protocol.NetworkSpec{{Name: "lan", IPv4: "10.0.0.5", MAC: "02:42:0a:00:00:05"}}}
}

// The source's limits, healthcheck, DNS and log options reach the new
// container; what dockmove decides (image, runtime, capabilities under the
// destination's policy, volumes, the MAC) does not come from the raw
// settings; the destination's own defaults stay its own.
func TestCreateConfigCarriesTheSourcesSettings(t *testing.T) {
	spec := sourceSettings(t, nil)
	cfg, host, _, err := createConfig(spec, "dockmove", map[string]string{"m": "1"}, "1.41")
	if err != nil {
		t.Fatal(err)
	}
	if host.Memory != 300<<20 || host.MemorySwap != 600<<20 || host.NanoCPUs != 5e8 || host.PidsLimit == nil || *host.PidsLimit != 100 ||
		len(host.Ulimits) != 1 || host.ShmSize != 32<<20 || host.DNS[0] != "10.0.0.1" || host.ExtraHosts[0] != "db:10.0.0.9" ||
		host.SecurityOpt[0] != "no-new-privileges" || host.Tmpfs["/scratch"] != "size=16m" || host.LogConfig.Config["max-size"] != "1m" {
		t.Fatalf("settings lost: %+v", host)
	}
	if host.Runtime != "dockmove" || len(host.CapAdd) != 0 || host.CgroupnsMode != "" || len(host.MaskedPaths) != 0 || host.RestartPolicy.Name != "always" {
		t.Fatalf("a setting the destination decides came from the wire: %+v", host)
	}
	if b := host.PortBindings["7000/tcp"]; len(b) != 1 || b[0].HostIP != "127.0.0.1" || b[0].HostPort != "18080" || !host.PublishAllPorts {
		t.Fatalf("published ports lost: %+v %v", host.PortBindings, host.PublishAllPorts)
	}
	if cfg.Healthcheck == nil || cfg.StopTimeout == nil || *cfg.StopTimeout != 7 || cfg.Cmd[0] != "serve" {
		t.Fatalf("config lost: %+v", cfg)
	}
	if cfg.Image != "sha256:abc" || cfg.Volumes != nil || cfg.Labels["m"] != "1" || cfg.Labels["x"] != "y" {
		t.Fatalf("config fields dockmove sets: %+v", cfg)
	}
}

func TestCheckHostConfigRefusesWhatReachesTheHost(t *testing.T) {
	for _, c := range []struct {
		name string
		mod  func(*container.Config, *container.HostConfig)
		want string // "" accepted
	}{
		{"defaults and limits", nil, ""},
		{"privileged", func(_ *container.Config, h *container.HostConfig) { h.Privileged = true }, "Privileged"},
		{"host device", func(_ *container.Config, h *container.HostConfig) {
			h.Devices = []container.DeviceMapping{{PathOnHost: "/dev/sda", PathInContainer: "/dev/sda", CgroupPermissions: "rwm"}}
		}, "Devices"},
		{"cgroup parent", func(_ *container.Config, h *container.HostConfig) { h.CgroupParent = "/" }, "CgroupParent"},
		{"seccomp off", func(_ *container.Config, h *container.HostConfig) {
			h.SecurityOpt = []string{"no-new-privileges", "seccomp=unconfined"}
		}, `SecurityOpt "seccomp=unconfined"`},
		{"host IPC", func(_ *container.Config, h *container.HostConfig) { h.IpcMode = "host" }, `IpcMode "host"`},
		{"host PID", func(_ *container.Config, h *container.HostConfig) { h.PidMode = "host" }, "PidMode"},
		{"user namespace of the host", func(_ *container.Config, h *container.HostConfig) { h.UsernsMode = "host" }, "UsernsMode"},
		{"CRIU configuration by annotation", func(_ *container.Config, h *container.HostConfig) {
			h.Annotations = map[string]string{"org.criu.config": "/tmp/evil.conf"}
		}, "Annotations"},
		{"logs sent elsewhere", func(_ *container.Config, h *container.HostConfig) {
			h.LogConfig = container.LogConfig{Type: "syslog", Config: map[string]string{"syslog-address": "udp://203.0.113.1:514"}}
		}, `LogConfig "syslog"`},
		{"spared by the OOM killer", func(_ *container.Config, h *container.HostConfig) { h.OomScoreAdj = -1000 }, "OomScoreAdj -1000"},
		{"published port with a host name for an address", func(_ *container.Config, h *container.HostConfig) {
			h.PortBindings = nat.PortMap{"7000/tcp": {{HostIP: "evil.example", HostPort: "80"}}}
		}, "PortBindings (invalid host address"},
		{"published port out of range", func(_ *container.Config, h *container.HostConfig) {
			h.PortBindings = nat.PortMap{"7000/tcp": {{HostPort: "70000"}}}
		}, "PortBindings (invalid host port"},
		{"published port of an unknown protocol", func(_ *container.Config, h *container.HostConfig) {
			h.PortBindings = nat.PortMap{"7000/icmp": {{HostPort: "80"}}}
		}, "PortBindings (invalid published port"},
		{"OOM kill off without a limit", func(_ *container.Config, h *container.HostConfig) {
			h.Memory, h.OomKillDisable = 0, new(bool)
			*h.OomKillDisable = true
		}, "OomKillDisable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckHostConfig(sourceSettings(t, c.mod).DockerHostConfig)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if c.want != "" {
				if _, _, _, err := createConfig(sourceSettings(t, c.mod), "dockmove", nil, "1.41"); err == nil {
					t.Fatal("createConfig applied a refused setting")
				}
			}
		})
	}
	// A setting of a later Docker is refused by name, not dropped.
	raw := json.RawMessage(`{"Memory": 1048576, "FutureIsolation": "strict"}`)
	if err := CheckHostConfig(raw); err == nil || !strings.Contains(err.Error(), "FutureIsolation (not a setting") {
		t.Fatalf("unknown setting: %v", err)
	}
}

// Without a label (Docker 20.10 does not label anonymous volumes), a volume
// is anonymous when named by a 64-digit hex ID and declared as one of the
// container's volumes. No daemon is reached (the socket does not exist).
func TestAnonymousVolumeWithoutLabels(t *testing.T) {
	c, err := New("unix:///nonexistent/docker.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := strings.Repeat("ab", 32)
	declared := map[string]struct{}{"/cache": {}}
	for _, tc := range []struct {
		name, dest string
		want       bool
	}{{id, "/cache", true}, {id, "/other", false}, {"mydata", "/cache", false}} {
		if got := c.AnonymousVolume(context.Background(), tc.name, tc.dest, declared); got != tc.want {
			t.Errorf("AnonymousVolume(%s, %s) = %v, want %v", tc.name, tc.dest, got, tc.want)
		}
	}
}

// A Config setting that the destination's Docker would ignore (a create
// request drops fields it does not know) is refused, naming the setting
// and the API version it needs; on a Docker that has it, it travels.
func TestCheckConfigRefusesWhatTheDestinationsDockerLacks(t *testing.T) {
	startInterval := func(c *container.Config, _ *container.HostConfig) {
		c.Healthcheck.StartPeriod, c.Healthcheck.StartInterval = 30*time.Second, time.Second
	}
	spec := sourceSettings(t, startInterval)
	err := CheckConfig(spec.DockerConfig, "1.41")
	if err == nil || !strings.Contains(err.Error(), "Healthcheck.StartInterval (needs Docker API 1.44; this host's Docker speaks 1.41") {
		t.Fatalf("a start interval for Docker 20.10: %v", err)
	}
	if _, _, _, err := createConfig(spec, "dockmove", nil, "1.41"); err == nil {
		t.Fatal("createConfig dropped the start interval in silence")
	}
	if err := CheckConfig(spec.DockerConfig, "1.51"); err != nil {
		t.Fatalf("a start interval for Docker 28: %v", err)
	}
	cfg, _, _, err := createConfig(spec, "dockmove", nil, "1.51")
	if err != nil || cfg.Healthcheck == nil || cfg.Healthcheck.StartInterval != time.Second {
		t.Fatalf("the start interval on Docker 28: %+v, %v", cfg.Healthcheck, err)
	}
	// The rest of the settings need nothing newer.
	if err := CheckConfig(sourceSettings(t, nil).DockerConfig, "1.41"); err != nil {
		t.Fatalf("settings every Docker has: %v", err)
	}
	// A later Docker's setting is refused by name, in Config and in its
	// healthcheck.
	for raw, want := range map[string]string{
		`{"Image": "app:1", "Cmd": ["serve"], "FutureField": 3}`:                    "FutureField (not a setting",
		`{"Image": "app:1", "Healthcheck": {"Test": ["CMD", "true"], "Jitter": 5}}`: "Healthcheck.Jitter (not a setting",
	} {
		if err := CheckConfig(json.RawMessage(raw), "1.51"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", raw, err, want)
		}
	}
}
