package restoreruntime

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// RemoveState deletes a container's state directory. A CRIU killed during
// a restore leaves its cgroup yard (cgroup file systems mounted under the
// work directory) behind; those are detached first, deepest first.
func RemoveState(dir string) error {
	prefix := filepath.Clean(dir) + "/"
	var mounts []string
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 4 && strings.HasPrefix(fields[4], prefix) {
				mounts = append(mounts, fields[4])
			}
		}
		f.Close()
	}
	sort.Sort(sort.Reverse(sort.StringSlice(mounts)))
	for _, m := range mounts {
		unix.Unmount(m, unix.MNT_DETACH)
	}
	return os.RemoveAll(dir)
}
