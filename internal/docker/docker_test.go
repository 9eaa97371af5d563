package docker

import (
	"testing"

	"github.com/dockmove/dockmove/transfer"
)

// The MAC address goes where the daemon's API version reads it: at the
// container level before 1.44 (Docker 20.10 speaks 1.41), on the endpoint
// from 1.44 (Docker 28 ignores the container-level field and picks a random
// MAC, so a moved container would change its MAC).
func TestCreateConfigPutsTheMACWhereTheAPIReadsIt(t *testing.T) {
	spec := transfer.ContainerSpec{Name: "c", ImageID: "sha256:x",
		Network: &transfer.NetworkSpec{Name: "lan", IPv4: "10.0.0.5", MAC: "02:42:0a:00:00:05"}}
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
		if cfg.MacAddress != c.container || ep.MacAddress != c.ep { //nolint:staticcheck
			t.Errorf("API %s: container MAC %q, endpoint MAC %q; want %q, %q", c.api, cfg.MacAddress, ep.MacAddress, c.container, c.ep) //nolint:staticcheck
		}
		if ep.IPAMConfig == nil || ep.IPAMConfig.IPv4Address != "10.0.0.5" {
			t.Errorf("API %s: address %+v", c.api, ep.IPAMConfig)
		}
	}
}
