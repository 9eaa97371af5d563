//go:build linux

package bench

import (
	"fmt"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// The stop-and-copy target compares the freeze with what CRIU alone takes
// to dump the same container to local tmpfs, in the same run. The
// local-pages variant (StopAndCopyLocal) is that dump: CRIU writes every
// page into migrate-src's work directory before anything ships, and its
// "source/dump" step times it. The bench gives that variant a work
// directory on a tmpfs of its own, so the dump writes to memory as the
// target says, not to this machine's disk.
const tmpfsWork = "/run/dockmove-bench/tmpfs-work"

// mountTmpfsWork mounts the tmpfs when the run has the local-pages variant,
// sized for the largest workload twice over, and returns what unmounts it.
func mountTmpfsWork(cfg Config) (dir string, undo func(), err error) {
	if !slices.Contains(cfg.Strategies, StopAndCopyLocal) {
		return "", func() {}, nil
	}
	size := int64(slices.Max(cfg.SizesMiB))*2 + 512
	if cfg.Redis {
		size = max(size, int64(cfg.RedisMiB)*2+512)
	}
	if err := os.MkdirAll(tmpfsWork, 0o700); err != nil {
		return "", nil, err
	}
	unix.Unmount(tmpfsWork, unix.MNT_DETACH) // one a killed run left
	if err := unix.Mount("tmpfs", tmpfsWork, "tmpfs", 0, "mode=0700,size="+strconv.FormatInt(size, 10)+"m"); err != nil {
		return "", nil, fmt.Errorf("bench: tmpfs for CRIU's local dump: %w", err)
	}
	return tmpfsWork, func() { unix.Unmount(tmpfsWork, unix.MNT_DETACH) }, nil
}

// agentArgs are migrate-src's flags for strategy in this run.
func (r *runner) agentArgs(strategy string) []string {
	args := agentArgs(strategy)
	if strategy == StopAndCopyLocal && r.tmpfsWork != "" {
		args = append(args, "--work-dir", r.tmpfsWork)
	}
	return args
}
