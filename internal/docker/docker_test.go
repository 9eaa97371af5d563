package docker

import (
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
		Network: &protocol.NetworkSpec{Name: "lan", IPv4: "10.0.0.5", MAC: "02:42:0a:00:00:05"}}
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
