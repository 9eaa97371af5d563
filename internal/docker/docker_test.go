package docker

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/mount"
	"github.com/dockmove/dockmove/protocol"
)

// The MAC address goes where the daemon's API version reads it: at the
// container level before 1.44 (Docker 20.10 speaks 1.41), on the endpoint
// from 1.44 (Docker 28 ignores the container-level field and picks a random
// MAC, so a moved container would change its MAC).
func TestCreateConfigPutsTheMACWhereTheAPIReadsIt(t *testing.T) {
	spec := protocol.ContainerSpec{Name: "c", ImageID: "sha256:x",
		Networks: []protocol.NetworkSpec{{Name: "lan", IPv4: "10.0.0.5", MAC: "02:42:0a:00:00:05"}}}
	for _, c := range []struct {
		api           string
		container, ep string
	}{
		{"1.41", "02:42:0a:00:00:05", ""},
		{"1.43", "02:42:0a:00:00:05", ""},
		{"1.44", "", "02:42:0a:00:00:05"},
		{"1.51", "", "02:42:0a:00:00:05"},
	} {
		cfg, _, netcfg, err := createConfig(spec, "dockmove", nil, c.api)
		if err != nil {
			t.Fatal(err)
		}
		ep := netcfg.EndpointsConfig["lan"]
		//lint:ignore SA1019 the field under test: API < 1.44 reads only it
		containerMAC := cfg.MacAddress
		if containerMAC != c.container || ep.MacAddress != c.ep {
			t.Errorf("API %s: container MAC %q, endpoint MAC %q; want %q, %q", c.api, containerMAC, ep.MacAddress, c.container, c.ep)
		}
		if ep.IPAMConfig == nil || ep.IPAMConfig.IPv4Address != "10.0.0.5" {
			t.Errorf("API %s: address %+v", c.api, ep.IPAMConfig)
		}
	}
}

// Several networks: all in the create request from API 1.44, each
// interface named and the gateway priority set from 1.48; before 1.44 the
// create takes the first (eth0's, the container's network mode) and Create
// connects the others.
func TestCreateConfigAttachesEveryNetwork(t *testing.T) {
	spec := protocol.ContainerSpec{Name: "c", ImageID: "sha256:x", Networks: []protocol.NetworkSpec{
		{Name: "front", IPv4: "10.0.0.5", MAC: "02:42:0a:00:00:05", Interface: "eth0", GwPriority: 10},
		{Name: "back", IPv4: "10.1.0.5", MAC: "02:42:0a:01:00:05", Interface: "eth1", Aliases: []string{"db"}},
	}}
	for _, c := range []struct {
		api     string
		attach  []string
		ifnames bool
	}{
		{"1.41", []string{"front"}, false},
		{"1.44", []string{"front", "back"}, false},
		{"1.48", []string{"front", "back"}, true},
		{"1.51", []string{"front", "back"}, true},
	} {
		_, host, netcfg, err := createConfig(spec, "dockmove", nil, c.api)
		if err != nil {
			t.Fatal(err)
		}
		if host.NetworkMode != "front" || len(netcfg.EndpointsConfig) != len(c.attach) {
			t.Errorf("API %s: network mode %q, endpoints %v; want front, %v", c.api, host.NetworkMode, netcfg.EndpointsConfig, c.attach)
			continue
		}
		for _, n := range spec.Networks[:len(c.attach)] {
			ep := netcfg.EndpointsConfig[n.Name]
			if ep == nil || ep.IPAMConfig.IPv4Address != n.IPv4 || len(ep.Aliases) != len(n.Aliases) {
				t.Errorf("API %s: endpoint of %s: %+v", c.api, n.Name, ep)
				continue
			}
			name, named := ep.DriverOpts[IfnameOption]
			if named != c.ifnames || named && name != n.Interface || c.ifnames && ep.GwPriority != n.GwPriority {
				t.Errorf("API %s: %s named %q (%v), priority %d", c.api, n.Name, name, named, ep.GwPriority)
			}
		}
	}
	_, host, netcfg, err := createConfig(protocol.ContainerSpec{Name: "c", ImageID: "sha256:x"}, "dockmove", nil, "1.51")
	if err != nil || host.NetworkMode != "none" || len(netcfg.EndpointsConfig) != 0 {
		t.Errorf("no network: mode %q, endpoints %v, %v", host.NetworkMode, netcfg.EndpointsConfig, err)
	}
}

func TestLoadedImagesReadsWhatDockerNamed(t *testing.T) {
	out := []byte(`{"stream":"Loaded image: dockmove/only-host1:t-1\n"}
{"stream":"Loaded image ID: sha256:6d304ff64321c1f4ed8def51be34d856775181ccbd3aa4c7194ce461073269bc\n"}
{"status":"Loading layer","progressDetail":{}}
`)
	got := loadedImages(out)
	if len(got) != 2 || got[0] != "dockmove/only-host1:t-1" || got[1] != "sha256:6d304ff64321c1f4ed8def51be34d856775181ccbd3aa4c7194ce461073269bc" {
		t.Fatalf("loaded: %q", got)
	}
}

// An anonymous volume is created unnamed (Docker makes it for the
// container, and `docker rm -v` removes it): declared as `-v /path` does,
// or as a read-only --mount; a named one is bound by name.
func TestCreateConfigMountsAnonymousVolumesUnnamed(t *testing.T) {
	spec := protocol.ContainerSpec{Name: "c", ImageID: "sha256:x", Volumes: []protocol.VolumeSpec{
		{Name: "data", Destination: "/data"},
		{Name: strings.Repeat("ab", 32), Destination: "/cache", Anonymous: true, ReadOnly: true},
		{Name: strings.Repeat("cd", 32), Destination: "/tmp/x", Anonymous: true},
	}}
	cfg, host, _, err := createConfig(spec, "dockmove", nil, "1.41")
	if err != nil {
		t.Fatal(err)
	}
	if len(host.Binds) != 1 || host.Binds[0] != "data:/data" {
		t.Errorf("binds %q", host.Binds)
	}
	if len(host.Mounts) != 1 || host.Mounts[0].Source != "" || host.Mounts[0].Target != "/cache" ||
		host.Mounts[0].Type != mount.TypeVolume || !host.Mounts[0].ReadOnly {
		t.Errorf("mounts %+v", host.Mounts)
	}
	if _, ok := cfg.Volumes["/tmp/x"]; !ok || len(cfg.Volumes) != 1 {
		t.Errorf("declared volumes %v, want /tmp/x as `-v /tmp/x` declares it", cfg.Volumes)
	}
}

// A host gives out addresses from its networks' ranges (--ip-range), or
// from the whole subnet of a pool without one.
func TestNetworkInfoAllocates(t *testing.T) {
	ranged := NetworkInfo{Ranges: []string{"10.77.0.64/27"}}
	whole := NetworkInfo{Ranges: []string{"10.77.0.0/24"}}
	for _, c := range []struct {
		info NetworkInfo
		ip   string
		want bool
	}{
		{ranged, "10.77.0.65", true},
		{ranged, "10.77.0.97", false},
		{whole, "10.77.0.97", true},
		{whole, "10.78.0.1", false},
		{ranged, "not an address", false},
	} {
		if got := c.info.Allocates(c.ip); got != c.want {
			t.Errorf("%v allocates %s: %v, want %v", c.info.Ranges, c.ip, got, c.want)
		}
	}
}

// The first question a client asks is its API version (agents put it in
// their hello before anything else): a Docker 20.10 that answers its
// ping with 1.41 must be reported as 1.41, not as the client's default.
func TestAPIVersionIsTheDaemonsOnTheFirstCallWithFakeDaemon(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/_ping") {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		}
		w.Header().Set("Api-Version", "1.41")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	c, err := New("tcp://" + strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, err := c.APIVersion(context.Background()); err != nil || v != "1.41" {
		t.Fatalf("API version %q (%v), want the daemon's 1.41", v, err)
	}
}

// A reservation's MAC is a locally administered unicast address, a new
// one each time (never the one Docker derives from the address).
func TestReservationMAC(t *testing.T) {
	seen := map[string]bool{}
	for range 64 {
		s, err := reservationMAC()
		if err != nil {
			t.Fatal(err)
		}
		mac, err := net.ParseMAC(s)
		if err != nil || len(mac) != 6 || mac[0]&1 != 0 || mac[0]&2 == 0 || seen[s] {
			t.Fatalf("reservation MAC %q (%v): want a fresh locally administered unicast address", s, err)
		}
		seen[s] = true
	}
}

func TestHoldsIPv6(t *testing.T) {
	for _, c := range []struct {
		api, runtime string
		want         bool
	}{
		{"1.41", "", true},         // Docker 20.10: wired in the prestart hook
		{"1.44", "", true},         // Docker 25
		{"1.45", "", false},        // Docker 26, its own runtime: it would take the packets
		{"1.51", "", false},        // Docker 28, its own runtime
		{"1.51", "dockmove", true}, // Docker 28 under dockmove's runtime: no local delivery
		{"1.51", "runsc", false},   // another runtime
		{"1.45", "dockmove", true},
	} {
		if got := holdsIPv6(c.api, c.runtime); got != c.want {
			t.Errorf("holdsIPv6(%q, %q) = %v, want %v", c.api, c.runtime, got, c.want)
		}
	}
}
