//go:build linux

package migrate

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

// usableDevice reports whether a container may use a device node of that
// number under Docker's default device rules (runc's allowed devices: null,
// zero, full, random, urandom, tty, console, ptmx, the pseudo-terminals and
// tun). Any node may be made (mknod), but only these are of use inside a
// container, so host2 takes these and refuses the rest: nodes of host
// disks or memory have no business in a container's files.
func usableDevice(d protocol.DeviceNode) bool {
	if d.Block {
		return false
	}
	switch d.Major {
	case 1:
		return d.Minor == 3 || d.Minor == 5 || d.Minor == 7 || d.Minor == 8 || d.Minor == 9
	case 5:
		return d.Minor <= 2
	case 136:
		return true
	case 10:
		return d.Minor == 200
	}
	return false
}

// checkDevices refuses, before anything is frozen, the device nodes host2
// does not take and any announced for a stream that does not ship.
func checkDevices(devs []protocol.DeviceNode, spec protocol.ContainerSpec) error {
	streams := map[string]bool{protocol.StreamRootfs: true}
	for i := range spec.Volumes {
		streams[protocol.VolumeStream(i)] = true
	}
	for i, b := range spec.Binds {
		streams[protocol.BindStream(i)] = b.Mode == protocol.BindCopy
	}
	var refused []string
	for _, d := range devs {
		if !streams[d.Stream] {
			return fmt.Errorf("%w: a device node announced in stream %q, which does not ship", transfer.ErrBadMessage, d.Stream)
		}
		if !usableDevice(d) {
			refused = append(refused, d.Stream+": "+d.String())
		}
	}
	if len(refused) > 0 {
		return errors.New("the container's files hold device nodes the destination does not take (only those a container may use under Docker's default rules: null, zero, full, random, urandom, tty, console, ptmx, pseudo-terminals, tun): " +
			strings.Join(refused, ", ") + "; remove them from the container (docker exec ... rm) and migrate again")
	}
	return nil
}

// withDevices is policy p taking the device nodes announced for stream.
func (in *incoming) withDevices(p transfer.Policy, stream string) transfer.Policy {
	for _, d := range in.pre.Devices {
		if d.Stream == stream {
			p.Devices = append(p.Devices, transfer.Device{Path: d.Path, Block: d.Block, Major: d.Major, Minor: d.Minor})
		}
	}
	return p
}
