package docker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/versions"
)

// How the destination treats each field of the source's HostConfig (Docker's
// JSON names; Resources' fields sit at the top level). A field in none of
// these lists that is set on the source is refused by name: nothing is
// dropped in silence, and a setting a later Docker adds is refused until it
// is classified here.
var (
	// carriedHost are applied as the source's Docker reports them: limits,
	// DNS, logging, process settings confined to the container.
	carriedHost = []string{
		"Memory", "MemoryReservation", "MemorySwap", "MemorySwappiness", "OomKillDisable",
		"NanoCpus", "CpuShares", "CpuPeriod", "CpuQuota", "CpusetCpus", "CpusetMems",
		"PidsLimit", "Ulimits", "BlkioWeight",
		"ShmSize", "Tmpfs", "Dns", "DnsOptions", "DnsSearch", "ExtraHosts",
		"LogConfig", "OomScoreAdj", "ReadonlyRootfs", "GroupAdd", "Sysctls",
		"AutoRemove", "Init", "SecurityOpt", "IpcMode",
		"PortBindings", "PublishAllPorts",
	}
	// translatedHost are set by dockmove from the validated spec (names of
	// volumes and networks, restart policy, capabilities under the
	// destination's policy, the restore runtime).
	translatedHost = []string{
		"Binds", "Mounts", "NetworkMode", "RestartPolicy", "CapAdd", "CapDrop", "Runtime",
	}
	// ownHost are the destination's own: defaults of its Docker and
	// kernel, or client-side leftovers.
	ownHost = []string{
		"CgroupnsMode", "MaskedPaths", "ReadonlyPaths", "ConsoleSize", "Isolation", "ContainerIDFile",
		"KernelMemory", "KernelMemoryTCP",
	}
)

// Settings the destination never accepts from a source, with the reason
// given when one is set (they reach the host itself).
var refusedHost = map[string]string{
	"Privileged":           "privileged containers reach the host",
	"Devices":              "host devices",
	"DeviceCgroupRules":    "device access rules",
	"DeviceRequests":       "host devices (GPUs)",
	"CgroupParent":         "a cgroup outside Docker's",
	"Cgroup":               "another container's cgroup",
	"PidMode":              "a shared PID namespace",
	"UTSMode":              "a shared UTS namespace",
	"UsernsMode":           "the host's user namespace",
	"VolumesFrom":          "another container's volumes",
	"Links":                "links to other containers",
	"VolumeDriver":         "a volume driver",
	"StorageOpt":           "storage driver options",
	"BlkioWeightDevice":    "settings of host block devices",
	"BlkioDeviceReadBps":   "settings of host block devices",
	"BlkioDeviceWriteBps":  "settings of host block devices",
	"BlkioDeviceReadIOps":  "settings of host block devices",
	"BlkioDeviceWriteIOps": "settings of host block devices",
	"CpuRealtimePeriod":    "real-time CPU time of the host",
	"CpuRealtimeRuntime":   "real-time CPU time of the host",
	"Annotations":          "OCI annotations, some of which runtimes act on (org.criu.config names a CRIU configuration file)",
}

// carriedLogDrivers write to host2 itself; others (syslog, fluentd, gelf,
// ...) would send the container's output to addresses the source chose.
var carriedLogDrivers = []string{"", "json-file", "local", "journald", "none"}

// isZero reports a JSON value that sets nothing: null, false, 0, "", an
// empty array or object.
func isZero(v json.RawMessage) bool {
	switch s := string(bytes.TrimSpace(v)); s {
	case "", "null", "false", "0", `""`, "[]", "{}":
		return true
	}
	return false
}

// CheckHostConfig lists every setting of the source's HostConfig that the
// destination will not apply, with the reason; nil when all can be.
func CheckHostConfig(raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return fmt.Errorf("docker host config: %w", err)
	}
	var why []string
	for name, v := range fields {
		if isZero(v) || slices.Contains(translatedHost, name) || slices.Contains(ownHost, name) {
			continue
		}
		if reason, ok := refusedHost[name]; ok {
			why = append(why, fmt.Sprintf("%s (%s)", name, reason))
			continue
		}
		if !slices.Contains(carriedHost, name) {
			why = append(why, name+" (not a setting this destination knows how to carry)")
		}
	}
	var h container.HostConfig
	if err := json.Unmarshal(raw, &h); err != nil {
		return fmt.Errorf("docker host config: %w", err)
	}
	if _, err := PortBindings(raw); err != nil {
		why = append(why, fmt.Sprintf("PortBindings (%v)", err))
	}
	for _, o := range h.SecurityOpt {
		if !noNewPrivileges(o) {
			why = append(why, fmt.Sprintf("SecurityOpt %q (only no-new-privileges is carried)", o))
		}
	}
	if m := h.IpcMode; m != "" && !m.IsPrivate() && !m.IsNone() {
		why = append(why, fmt.Sprintf("IpcMode %q (a shared IPC namespace)", m))
	}
	if !slices.Contains(carriedLogDrivers, h.LogConfig.Type) {
		why = append(why, fmt.Sprintf("LogConfig %q (a log driver that sends output elsewhere)", h.LogConfig.Type))
	}
	if h.OomScoreAdj < 0 {
		why = append(why, fmt.Sprintf("OomScoreAdj %d (spared by the OOM killer at the expense of this host's own processes)", h.OomScoreAdj))
	}
	if h.OomKillDisable != nil && *h.OomKillDisable && h.Memory == 0 {
		why = append(why, "OomKillDisable without a memory limit (could exhaust this host's memory)")
	}
	if len(why) == 0 {
		return nil
	}
	sort.Strings(why)
	return fmt.Errorf("settings this destination does not apply: %s", strings.Join(why, "; "))
}

func noNewPrivileges(o string) bool {
	switch o {
	case "no-new-privileges", "no-new-privileges:true", "no-new-privileges=true":
		return true
	}
	return false
}

// configFields are the fields of Docker's Config this destination knows
// (Docker's JSON names), each with the API version from which a Docker
// honours it ("" for every version dockmove speaks to). Config travels
// whole; a field in none of these that is set on the source is a later
// Docker's setting and refused by name. healthFields are the same for the
// healthcheck.
var (
	configFields = map[string]string{
		"Hostname": "", "Domainname": "", "User": "", "AttachStdin": "", "AttachStdout": "", "AttachStderr": "",
		"ExposedPorts": "", "Tty": "", "OpenStdin": "", "StdinOnce": "", "Env": "", "Cmd": "", "Healthcheck": "",
		"ArgsEscaped": "", "Image": "", "Volumes": "", "WorkingDir": "", "Entrypoint": "", "NetworkDisabled": "",
		"MacAddress": "", "OnBuild": "", "Labels": "", "StopSignal": "", "StopTimeout": "", "Shell": "",
	}
	healthFields = map[string]string{
		"Test": "", "Interval": "", "Timeout": "", "StartPeriod": "", "Retries": "",
		"StartInterval": "1.44", // --health-start-interval: Docker 25
	}
)

// CheckConfig lists every setting of the source's Config that a Docker
// speaking API version api would not honour (a create request ignores a
// field it does not know, so the setting would be lost in silence), and
// every setting this destination does not know; nil when all travel.
func CheckConfig(raw json.RawMessage, api string) error {
	if len(raw) == 0 {
		return nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return fmt.Errorf("docker config: %w", err)
	}
	var why []string
	check := func(prefix string, fields map[string]json.RawMessage, known map[string]string) {
		for name, v := range fields {
			if isZero(v) {
				continue
			}
			since, ok := known[name]
			switch {
			case !ok:
				why = append(why, prefix+name+" (not a setting this destination knows how to carry)")
			case since != "" && versions.LessThan(api, since):
				why = append(why, fmt.Sprintf("%s%s (needs Docker API %s; this host's Docker speaks %s: upgrade it, or move the container without the setting)", prefix, name, since, api))
			}
		}
	}
	check("", fields, configFields)
	if h, ok := fields["Healthcheck"]; ok && !isZero(h) {
		var health map[string]json.RawMessage
		if err := json.Unmarshal(h, &health); err != nil {
			return fmt.Errorf("docker config: healthcheck: %w", err)
		}
		check("Healthcheck.", health, healthFields)
	}
	if len(why) == 0 {
		return nil
	}
	sort.Strings(why)
	return fmt.Errorf("settings this destination's Docker would not apply: %s", strings.Join(why, "; "))
}

// carriedConfig is the source's Config, which travels whole, with the
// fields dockmove sets itself cleared: the image (host2's ID), labels
// (merged with the migration's), the MAC (per endpoint), anonymous volumes
// (the mounts are carried explicitly) and the attach flags.
func carriedConfig(raw json.RawMessage) (*container.Config, error) {
	var c container.Config
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("docker config: %w", err)
	}
	c.Image, c.Labels, c.Volumes = "", nil, nil
	//lint:ignore SA1019 cleared: the MAC is set per endpoint or by createConfig
	c.MacAddress = ""
	c.AttachStdin, c.AttachStdout, c.AttachStderr = false, false, false
	return &c, nil
}

// carriedHostConfig copies the carried fields of the source's HostConfig
// into host. CheckHostConfig has refused the rest.
func carriedHostConfig(raw json.RawMessage, host *container.HostConfig) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return fmt.Errorf("docker host config: %w", err)
	}
	keep := map[string]json.RawMessage{}
	for _, name := range carriedHost {
		if v, ok := fields[name]; ok {
			keep[name] = v
		}
	}
	b, err := json.Marshal(keep)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, host)
}
