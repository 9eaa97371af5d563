package protocol

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/dockmove/dockmove/transfer"
)

// TestMigrationMessageValidation checks what the destination refuses from
// the wire for the pre-copy, process and resolve messages.
func TestMigrationMessageValidation(t *testing.T) {
	id := strings.Repeat("ab", 16)
	proc := func(name string) *Preflight {
		return &Preflight{MigrationID: id, Strategy: StrategyPrecopy, Process: &ProcessSpec{Name: name}}
	}
	withImage := proc("workload")
	withImage.ImageLayers = []string{"sha256:" + strings.Repeat("0", 64)}
	withRootfs := proc("workload")
	withRootfs.Sizes.Rootfs = 1
	badStrategy := proc("workload")
	badStrategy.Strategy = "auto"
	cases := []struct {
		name string
		msg  transfer.Message
		ok   bool
	}{
		{"first round", &PreRound{Index: 1}, true},
		{"last allowed round", &PreRound{Index: MaxPreRounds}, true},
		{"round zero", &PreRound{Index: 0}, false},
		{"too many rounds", &PreRound{Index: MaxPreRounds + 1}, false},
		{"negative round", &PreRound{Index: -1, Done: true}, false},
		{"done after none", &PreRound{Index: 0, Done: true}, true},
		{"done after three", &PreRound{Index: 3, Done: true}, true},
		{"process preflight", proc("workload"), true},
		{"hybrid process preflight", &Preflight{MigrationID: id, Strategy: StrategyHybrid, Process: &ProcessSpec{Name: "redis-server"}}, true},
		{"process name with a slash", proc("../etc"), false},
		{"process name with a space", proc("a b"), false},
		{"empty process name", proc(""), false},
		{"process with an image", withImage, false},
		{"process with a file system", withRootfs, false},
		{"auto never travels", badStrategy, false},
		{"process restored", &Restored{Pid: 42, RestoreMillis: 5}, true},
		{"measured restore time", &PreflightOK{RestoreMillis: 1200}, true},
		{"negative restore time", &PreflightOK{RestoreMillis: -1}, false},
		{"absurd restore time", &PreflightOK{RestoreMillis: 3600_001}, false},
		{"restored without container or pid", &Restored{RestoreMillis: 5}, false},
		{"negative pid", &Restored{ContainerID: strings.Repeat("a", 64), Pid: -1}, false},
		{"freeze steps", &Restored{Pid: 42, Steps: []FreezeStep{{"prepare", 30}, {"runc-restore", 400000}}}, true},
		{"a freeze step with a path for a name", &Restored{Pid: 42, Steps: []FreezeStep{{"../x", 30}}}, false},
		{"a negative freeze step", &Restored{Pid: 42, Steps: []FreezeStep{{"prepare", -1}}}, false},
		{"a freeze step of days", &Restored{Pid: 42, Steps: []FreezeStep{{"prepare", 1 << 40}}}, false},
		{"too many freeze steps", &Restored{Pid: 42, Steps: make([]FreezeStep, MaxFreezeSteps+1)}, false},
		{"resolve a commit", &Resolve{MigrationID: id, Commit: true}, true},
		{"resolve a rollback", &Resolve{MigrationID: id}, true},
		{"resolve a path", &Resolve{MigrationID: "../" + id}, false},
		{"resolve nothing", &Resolve{}, false},
		{"outcome committed", &Outcome{State: OutcomeCommitted}, true},
		{"outcome pending", &Outcome{State: OutcomePending}, true},
		{"outcome made up", &Outcome{State: "maybe"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.msg.Validate(); (err == nil) != c.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestVolumeDestinationCannotCarryABindMode(t *testing.T) {
	for dest, ok := range map[string]bool{
		"/data": true, "/var/lib/app": true,
		"/data:rw": false, "/data:ro,z": false, "/a,b": false, "data": false, "/": false, "/a/../etc": false,
	} {
		v := VolumeSpec{Name: "vol", Destination: dest}
		if err := v.Validate(); (err == nil) != ok {
			t.Errorf("volume destination %q: %v, want ok=%v", dest, err, ok)
		}
	}
}

// A network a container is moved onto must be a network, not one of
// Docker's network modes ("host" would share the destination's stack); the
// raw Docker settings must be JSON objects within their bound.
func TestContainerSpecNetworkAndSettings(t *testing.T) {
	spec := func(network string, cfg json.RawMessage) ContainerSpec {
		return ContainerSpec{Name: "web", ImageID: "sha256:" + strings.Repeat("0", 64), DockerConfig: cfg,
			Networks: []NetworkSpec{{Name: network, Subnet: "10.0.0.0/24", IPv4: "10.0.0.5", MAC: "02:42:0a:00:00:05"}}}
	}
	for _, c := range []struct {
		name string
		spec ContainerSpec
		ok   bool
	}{
		{"a network", spec("lan", nil), true},
		{"host mode", spec("host", nil), false},
		{"none mode", spec("none", nil), false},
		{"settings object", spec("lan", json.RawMessage(`{"Cmd":["x"]}`)), true},
		{"settings not an object", spec("lan", json.RawMessage(`["x"]`)), false},
		{"settings too large", spec("lan", json.RawMessage(`{"Env":["`+strings.Repeat("x", maxDockerSettings)+`"]}`)), false},
	} {
		if err := c.spec.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// An --init container comes with the digest of its docker-init, and only
// such a container announces one.
func TestContainerSpecInitBinary(t *testing.T) {
	initOn := json.RawMessage(`{"Init":true}`)
	good := &FileDigest{SHA256: strings.Repeat("ab", 32), Size: 708080}
	for _, c := range []struct {
		name string
		host json.RawMessage
		bin  *FileDigest
		ok   bool
	}{
		{"init with its binary", initOn, good, true},
		{"no init, no binary", json.RawMessage(`{"Init":false}`), nil, true},
		{"init without its binary", initOn, nil, false},
		{"a binary without init", nil, good, false},
		{"bad digest", initOn, &FileDigest{SHA256: "../x", Size: 1}, false},
		{"empty", initOn, &FileDigest{SHA256: good.SHA256}, false},
		{"too large", initOn, &FileDigest{SHA256: good.SHA256, Size: MaxInitBinary + 1}, false},
	} {
		spec := ContainerSpec{Name: "web", ImageID: "sha256:" + strings.Repeat("0", 64), DockerHostConfig: c.host, InitBinary: c.bin}
		if err := spec.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// Several networks: each once, each interface name once and one Linux
// takes.
func TestSeveralNetworksValidation(t *testing.T) {
	net := func(name, iface string) NetworkSpec {
		return NetworkSpec{Name: name, Subnet: "10.0.0.0/24", IPv4: "10.0.0.5", MAC: "02:42:0a:00:00:05", Interface: iface}
	}
	for _, c := range []struct {
		name string
		nets []NetworkSpec
		ok   bool
	}{
		{"two", []NetworkSpec{net("a", "eth0"), net("b", "eth1")}, true},
		{"interfaces unknown", []NetworkSpec{net("a", ""), net("b", "")}, true},
		{"a network twice", []NetworkSpec{net("a", "eth0"), net("a", "eth1")}, false},
		{"an interface twice", []NetworkSpec{net("a", "eth0"), net("b", "eth0")}, false},
		{"interface with a slash", []NetworkSpec{net("a", "../eth0")}, false},
		{"interface too long", []NetworkSpec{net("a", "eth0123456789012")}, false},
		{"too many", slices.Repeat([]NetworkSpec{net("a", "")}, maxNetworks+1), false},
		{"dual-stack", []NetworkSpec{withIPv6(net("a", "eth0"), "fd78::1:40")}, true},
		{"an IPv4 address as IPv6", []NetworkSpec{withIPv6(net("a", "eth0"), "10.0.0.9")}, false},
		{"a link-local IPv6 address", []NetworkSpec{withIPv6(net("a", "eth0"), "fe80::1")}, false},
	} {
		spec := ContainerSpec{Name: "web", ImageID: "sha256:" + strings.Repeat("0", 64), Networks: c.nets}
		if err := spec.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

func withIPv6(n NetworkSpec, ip string) NetworkSpec {
	n.IPv6 = ip
	return n
}

func TestBindSpecValidation(t *testing.T) {
	marker := ".dockmove-shared-" + strings.Repeat("0f", 16)
	for _, c := range []struct {
		b  BindSpec
		ok bool
	}{
		{BindSpec{Source: "/srv/app", Destination: "/data", Mode: BindCopy}, true},
		{BindSpec{Source: "/srv/app", Destination: "/data", Mode: BindShared, Marker: marker}, true},
		{BindSpec{Source: "/srv/app", Destination: "/data", Mode: BindShared}, false},
		{BindSpec{Source: "/srv/app", Destination: "/data", Mode: BindShared, Marker: "../../etc/passwd"}, false},
		{BindSpec{Source: "/srv/app", Destination: "/data", Mode: BindCopy, Marker: marker}, false},
		{BindSpec{Source: "/srv/../etc", Destination: "/data", Mode: BindCopy}, false},
		{BindSpec{Source: "srv", Destination: "/data", Mode: BindCopy}, false},
		{BindSpec{Source: "/", Destination: "/data", Mode: BindCopy}, false},
		{BindSpec{Source: "/srv/a:/etc", Destination: "/data", Mode: BindCopy}, false},
		{BindSpec{Source: "/srv/app", Destination: "/data:rw,z", Mode: BindCopy}, false},
		{BindSpec{Source: "/srv/app", Destination: "/data", Mode: "mirror"}, false},
	} {
		if err := c.b.Validate(); (err == nil) != c.ok {
			t.Errorf("%+v: %v", c.b, err)
		}
	}
}

func TestNetworkDefinitionValidation(t *testing.T) {
	ok := NetworkDefinition{Driver: "macvlan", Subnet: "10.78.0.0/24", Gateway: "10.78.0.1", IPRange: "10.78.0.64/27", Options: map[string]string{"parent": "eth1"}}
	for _, c := range []struct {
		name string
		mod  func(*NetworkDefinition)
		ok   bool
	}{
		{"macvlan", func(*NetworkDefinition) {}, true},
		{"bad driver", func(d *NetworkDefinition) { d.Driver = "../x" }, false},
		{"IPv6 subnet", func(d *NetworkDefinition) { d.Subnet = "fd00::/64" }, false},
		{"gateway outside", func(d *NetworkDefinition) { d.Gateway = "10.79.0.1" }, false},
		{"range outside", func(d *NetworkDefinition) { d.IPRange = "10.78.1.0/27" }, false},
		{"range wider than the subnet", func(d *NetworkDefinition) { d.IPRange = "10.78.0.0/16" }, false},
		{"empty option name", func(d *NetworkDefinition) { d.Options = map[string]string{"": "x"} }, false},
		{"dual-stack", func(d *NetworkDefinition) {
			d.Subnet6, d.Gateway6, d.IPRange6 = "fd78::/64", "fd78::1", "fd78::1:0/112"
		}, true},
		{"an IPv4 pool as IPv6", func(d *NetworkDefinition) { d.Subnet6 = "10.9.0.0/24" }, false},
		{"IPv6 range outside", func(d *NetworkDefinition) { d.Subnet6, d.IPRange6 = "fd78::/64", "fd79::/112" }, false},
	} {
		d := ok
		c.mod(&d)
		if err := d.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// Device nodes are named by stream and relative path, with a number Linux
// can have; a process migration announces none.
func TestPreflightDeviceNodes(t *testing.T) {
	base := func(devs ...DeviceNode) *Preflight {
		return &Preflight{MigrationID: strings.Repeat("a", 32), Strategy: StrategyStopAndCopy, Devices: devs,
			Container: ContainerSpec{Name: "web", ImageID: "sha256:" + strings.Repeat("0", 64)}}
	}
	for _, c := range []struct {
		name string
		pre  *Preflight
		ok   bool
	}{
		{"a console node in the layer", base(DeviceNode{Stream: StreamRootfs, Path: "dev/console2", Major: 5, Minor: 1}), true},
		{"a block node in a volume", base(DeviceNode{Stream: VolumeStream(3), Path: "disk", Block: true, Major: 8}), true},
		{"in the images", base(DeviceNode{Stream: StreamImages, Path: "x", Major: 1, Minor: 3}), false},
		{"absolute", base(DeviceNode{Stream: StreamRootfs, Path: "/dev/x", Major: 1, Minor: 3}), false},
		{"climbing out", base(DeviceNode{Stream: StreamRootfs, Path: "../x", Major: 1, Minor: 3}), false},
		{"not clean", base(DeviceNode{Stream: StreamRootfs, Path: "a/./x", Major: 1, Minor: 3}), false},
		{"no such number", base(DeviceNode{Stream: StreamRootfs, Path: "x", Major: 1 << 12}), false},
		{"too many", base(slices.Repeat([]DeviceNode{{Stream: StreamRootfs, Path: "x", Major: 1, Minor: 3}}, MaxDeviceNodes+1)...), false},
		{"in a process migration", &Preflight{MigrationID: strings.Repeat("a", 32), Strategy: StrategyStopAndCopy, Process: &ProcessSpec{Name: "sleep"},
			Devices: []DeviceNode{{Stream: StreamRootfs, Path: "x", Major: 1, Minor: 3}}}, false},
	} {
		if err := c.pre.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// Remote pages are asked for a container's stop-and-copy only.
func TestPreflightRemotePages(t *testing.T) {
	pre := func(s Strategy, process bool) *Preflight {
		p := &Preflight{MigrationID: strings.Repeat("a", 32), Strategy: s, RemotePages: true,
			Container: ContainerSpec{Name: "web", ImageID: "sha256:" + strings.Repeat("0", 64)}}
		if process {
			p.Container, p.Process = ContainerSpec{}, &ProcessSpec{Name: "sleep"}
		}
		return p
	}
	if err := pre(StrategyStopAndCopy, false).Validate(); err != nil {
		t.Fatalf("a container's stop-and-copy: %v", err)
	}
	for _, p := range []*Preflight{pre(StrategyLazy, false), pre(StrategyPrecopy, false), pre(StrategyHybrid, false), pre(StrategyStopAndCopy, true)} {
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "remote pages") {
			t.Errorf("%s (process %v): %v", p.Strategy, p.Process != nil, err)
		}
	}
}
