//go:build linux

package migrate

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/dockmove/dockmove/internal/cli"
	"github.com/dockmove/dockmove/transfer"
)

// diskNeed is space a migration needs in one directory.
type diskNeed struct {
	dir   string
	bytes int64
}

// fsInfo identifies a directory's file system and its free space.
type fsInfo func(dir string) (dev uint64, free int64, err error)

// statfsInfo is fsInfo for the real disks.
// A directory not made yet is measured by its nearest existing parent,
// where it will be made.
func statfsInfo(dir string) (uint64, int64, error) {
	var st syscall.Stat_t
	err := syscall.Stat(dir, &st)
	for errors.Is(err, syscall.ENOENT) && dir != filepath.Dir(dir) {
		dir = filepath.Dir(dir)
		err = syscall.Stat(dir, &st)
	}
	if err != nil {
		return 0, 0, err
	}
	var fsst syscall.Statfs_t
	if err := syscall.Statfs(dir, &fsst); err != nil {
		return 0, 0, err
	}
	return uint64(st.Dev), int64(fsst.Bavail) * int64(fsst.Bsize), nil
}

// diskMargin is kept free beyond the estimates: they are estimates, and a
// host whose disk fills up has worse problems than a refused migration.
const diskMargin = 256 << 20

// imagePolicy and rootfsPolicy are what this host accepts in a directory
// stream: the transfer package's policies, keeping diskMargin free on the
// target's file system whatever the source announced (its sizes are
// estimates, and a hostile source's are lies).
func imagePolicy() transfer.Policy {
	p := transfer.ImagePolicy()
	p.KeepFree = diskMargin
	return p
}

func rootfsPolicy() transfer.Policy {
	p := transfer.RootfsPolicy()
	p.KeepFree = diskMargin
	return p
}

// streamSlack is what a directory stream may carry beyond twice the
// source's estimate of it (allowance).
const streamSlack = 256 << 20

// allowance bounds a directory stream by the source's estimate of it in
// the preflight: twice that (a container grows between the preflight and
// its dump) plus streamSlack. What the disk check accepted for a migration
// is then what it may store, within that factor, whatever the source
// sends: one migration cannot take the room others were promised, and a
// source that announces little cannot send without end (KeepFree stops it
// only when the disk is nearly full).
func allowance(estimate int64) int64 { return satAdd(satAdd(estimate, estimate), streamSlack) }

// receiveBounded receives directory stream name into target under p, its
// content bounded by allowance(estimate) (with the other streams of p's
// Budget, if it has one: estimate is then theirs together).
func (in *incoming) receiveBounded(ctx context.Context, name, target string, p transfer.Policy, estimate int64) error {
	p.MaxTotalSize = min(p.MaxTotalSize, allowance(estimate))
	_, err := in.sess.ReceiveDir(ctx, name, target, p)
	if errors.Is(err, transfer.ErrTooLarge) {
		what := "stream " + name
		if p.Budget != nil {
			what += " with the others of its kind"
		}
		err = fmt.Errorf("%w (%s)", err, overAllowance(what, estimate))
	}
	return err
}

// overAllowance says why what, bounded by allowance(estimate), was cut
// off, and what to do.
func overAllowance(what string, estimate int64) string {
	return fmt.Sprintf("%s may carry twice the source's estimate of %s plus %s: the container grew fast during the migration, "+
		"or the source sends more than it announced; try again", what, cli.Size(estimate), cli.Size(streamSlack))
}

// checkDisk sums the needs per file system and refuses, naming the
// directory, when one would not fit with diskMargin to spare.
func checkDisk(needs []diskNeed, info fsInfo) error {
	total := map[uint64]int64{}
	free := map[uint64]int64{}
	dirs := map[uint64][]string{}
	for _, n := range needs {
		dev, avail, err := info(n.dir)
		if err != nil {
			return fmt.Errorf("disk space of %s: %w", n.dir, err)
		}
		total[dev] = satAdd(total[dev], n.bytes)
		free[dev] = avail
		dirs[dev] = append(dirs[dev], n.dir)
	}
	for dev, need := range total {
		if satAdd(need, diskMargin) > free[dev] {
			return fmt.Errorf("not enough disk space on the destination for %s: need %s (+%s margin), %s free",
				strings.Join(dirs[dev], " and "), cli.Size(need), cli.Size(diskMargin), cli.Size(free[dev]))
		}
	}
	return nil
}

// memoryUse reads the memory charged to pid's cgroup (v1 or v2).
func memoryUse(pid int) int64 {
	dir, v2 := cgroupDir(pid, "memory")
	if dir == "" {
		return 0
	}
	file := "memory.usage_in_bytes"
	if v2 {
		file = "memory.current"
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0
	}
	var n int64
	fmt.Sscan(string(b), &n)
	return n
}

// cgroupDir returns the directory of pid's cgroup: its v1 controller's
// (where the host has cgroup v1) or the unified one (v2 reports true);
// "" when there is none.
func cgroupDir(pid int, controller string) (dir string, v2 bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", false
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case slices.Contains(strings.Split(parts[1], ","), controller):
			dir = filepath.Join("/sys/fs/cgroup", controller, parts[2])
		case parts[0] == "0" && parts[1] == "":
			dir, v2 = filepath.Join("/sys/fs/cgroup", parts[2]), true
		default:
			continue
		}
		if _, err := os.Stat(dir); err == nil {
			return dir, v2
		}
	}
	return "", false
}

// satAdd adds non-negative sizes, saturating instead of wrapping: a peer's
// announced sizes must not overflow into a small total.
func satAdd(a, b int64) int64 {
	if b > math.MaxInt64-a {
		return math.MaxInt64
	}
	return a + b
}

// memAvailable is this host's available memory (MemAvailable in
// /proc/meminfo), 0 if unknown.
func memAvailable() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			var kib int64
			if _, err := fmt.Sscanf(rest, "%d kB", &kib); err == nil && kib > 0 {
				return kib << 10
			}
		}
	}
	return 0
}
