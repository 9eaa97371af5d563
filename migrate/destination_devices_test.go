//go:build linux

package migrate

import (
	"errors"
	"strings"
	"testing"

	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

// host2 takes the device nodes a container may use under Docker's default
// rules, refuses others by name, and refuses a node announced for a stream
// that does not ship as a bad message.
func TestCheckDevices(t *testing.T) {
	spec := protocol.ContainerSpec{
		Volumes: []protocol.VolumeSpec{{Name: "v", Destination: "/v"}},
		Binds:   []protocol.BindSpec{{Source: "/s", Destination: "/s", Mode: protocol.BindShared}},
	}
	node := func(stream, path string, block bool, major, minor uint32) protocol.DeviceNode {
		return protocol.DeviceNode{Stream: stream, Path: path, Block: block, Major: major, Minor: minor}
	}
	for _, c := range []struct {
		name string
		devs []protocol.DeviceNode
		want string // "" when taken
	}{
		{"none", nil, ""},
		{"usable ones", []protocol.DeviceNode{node("rootfs", "tmp/console2", false, 5, 1), node("volume-0", "null", false, 1, 3), node("rootfs", "pts9", false, 136, 9)}, ""},
		{"a disk", []protocol.DeviceNode{node("rootfs", "tmp/sda", true, 8, 0)}, "rootfs: tmp/sda (b 8:0)"},
		{"memory", []protocol.DeviceNode{node("rootfs", "mem", false, 1, 1)}, "rootfs: mem (c 1:1)"},
		{"every reason named", []protocol.DeviceNode{node("rootfs", "mem", false, 1, 1), node("volume-0", "kmsg", false, 1, 11)}, "mem (c 1:1), volume-0: kmsg (c 1:11)"},
		{"a stream that does not ship", []protocol.DeviceNode{node("bind-0", "null", false, 1, 3)}, "does not ship"},
		{"a volume that does not exist", []protocol.DeviceNode{node("volume-1", "null", false, 1, 3)}, "does not ship"},
	} {
		err := checkDevices(c.devs, spec)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", c.name, err, c.want)
		}
		if strings.Contains(c.want, "does not ship") != errors.Is(err, transfer.ErrBadMessage) {
			t.Errorf("%s: %v: a bad message only for a stream that does not ship", c.name, err)
		}
	}
}
