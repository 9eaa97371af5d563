package migrate

import (
	"context"

	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/transfer"
)

// hostInfo describes this host for the handshake: Docker's view of its
// stack when there is a Docker (dk may be nil), the kernel and the cgroup
// hierarchy as this process sees them otherwise.
func hostInfo(ctx context.Context, dk *docker.Client) transfer.HostInfo {
	if dk != nil {
		if h, err := dk.HostInfo(ctx); err == nil {
			return h
		}
	}
	var h transfer.HostInfo
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		h.Kernel = transfer.CleanVersion(unix.ByteSliceToString(u.Release[:]))
	}
	var fs unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &fs) == nil {
		h.Cgroup = 1
		if fs.Type == unix.CGROUP2_SUPER_MAGIC {
			h.Cgroup = 2
		}
	}
	return h
}
