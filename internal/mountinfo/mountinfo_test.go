package mountinfo

import "testing"

const table = `22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
235 133 0:99 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/docker/containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots/4/fs:/var/lib/docker/containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs,upperdir=/var/lib/docker/containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots/5/fs,workdir=/var/lib/docker/containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots/5/work,index=off
236 235 0:100 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
300 1 0:120 / /run/x/rootfs rw,relatime shared:9 - overlay overlay rw,lowerdir=/l,upperdir=/data\040root/snap/7/fs,workdir=/w
301 1 0:121 / /mnt/noupper rw - overlay overlay ro,lowerdir=/a:/b
`

func TestOverlayUpper(t *testing.T) {
	for _, c := range []struct{ mountpoint, want string }{
		{"/", "/var/lib/docker/containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots/5/fs"},
		{"/run/x/rootfs", "/data root/snap/7/fs"}, // optional fields and an escaped space
	} {
		got, err := OverlayUpper([]byte(table), c.mountpoint)
		if err != nil || got != c.want {
			t.Errorf("OverlayUpper(%s) = %q, %v; want %q", c.mountpoint, got, err, c.want)
		}
	}
	for _, mp := range []string{"/mnt/noupper", "/sys", "/nowhere"} {
		if got, err := OverlayUpper([]byte(table), mp); err == nil {
			t.Errorf("OverlayUpper(%s) = %q, want an error", mp, got)
		}
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`a\040b`: "a b", `tab\011x`: "tab\tx", `end\04`: `end\04`, `plain`: "plain", `\134`: `\`} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
