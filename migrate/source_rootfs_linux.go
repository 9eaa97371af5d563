package migrate

import (
	"fmt"
	"os"
	"strconv"

	"github.com/docker/docker/api/types/container"

	"github.com/dockmove/dockmove/internal/mountinfo"
)

// Storage drivers whose writable layer dockmove moves.
const (
	driverOverlay2 = "overlay2" // Docker's graph driver
	// driverSnapshotter is what `docker inspect` names the containerd image
	// store's overlay snapshotter (the default for new installs from Docker
	// 29). It reports no directories: the layer is found in the
	// container's mount table.
	driverSnapshotter = "overlayfs"
)

// writableLayer returns a running container's overlay upper directory
// (what moves with it) and its root filesystem's path as dockerd sees it
// ("" when Docker does not report one).
func writableLayer(r container.InspectResponse) (upper, merged string, err error) {
	switch r.GraphDriver.Name {
	case driverOverlay2:
		upper, merged = r.GraphDriver.Data["UpperDir"], r.GraphDriver.Data["MergedDir"]
	case driverSnapshotter:
		if r.State == nil || r.State.Pid <= 0 {
			return "", "", fmt.Errorf("%w: no init PID to find its writable layer", ErrCannotMove)
		}
		data, rerr := os.ReadFile("/proc/" + strconv.Itoa(r.State.Pid) + "/mountinfo")
		if rerr != nil {
			return "", "", rerr
		}
		upper, err = mountinfo.OverlayUpper(data, "/")
	default:
		err = fmt.Errorf("%w: its storage driver is %s", ErrCannotMove, r.GraphDriver.Name)
	}
	if err == nil && upper == "" {
		err = fmt.Errorf("%w: Docker reports no writable layer (driver %s)", ErrCannotMove, r.GraphDriver.Name)
	}
	return upper, merged, err
}
