package criu

import (
	"context"
	"fmt"
	"os/exec"

	gocriu "github.com/checkpoint-restore/go-criu/v7"
)

// Probe asks the criu binary at path ("" finds "criu" in PATH) for its version
// and which of the migration-relevant kernel features work here.
//
// Features are checked with `criu check --feature`, not the RPC feature check:
// on this project's kernels (no CONFIG_MEM_SOFT_DIRTY) the RPC answers
// mem_track=true while the CLI check, and every real pre-dump, fail.
func Probe(ctx context.Context, path string) (Capabilities, error) {
	if path == "" {
		path = "criu"
	}
	bin, err := exec.LookPath(path)
	if err != nil {
		return Capabilities{}, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	c := gocriu.MakeCriu()
	c.SetCriuPath(bin)
	v, err := c.GetCriuVersion()
	if err != nil {
		return Capabilities{}, fmt.Errorf("criu version: %w", err)
	}
	caps := Capabilities{Version: v}
	if v < MinVersion {
		return caps, fmt.Errorf("%w: have %s, need 4.2.1 (older versions cannot dump TCP sockets on kernels >= 6.16)", ErrTooOld, caps.VersionString())
	}
	caps.MemTrack = checkFeature(ctx, bin, "mem_dirty_track")
	caps.LazyPages = checkFeature(ctx, bin, "uffd-noncoop")
	caps.NFTables = checkFeature(ctx, bin, "nftables")
	return caps, nil
}

// ReadsLimitsFromProc reports whether the criu binary at path ("" finds
// "criu" in PATH) reads the resource limits of a task it may not prlimit()
// (another user's, when root lacks CAP_SYS_RESOURCE) from /proc/PID/limits:
// the build scripts/deps.sh makes does (scripts/criu-patches), stock CRIU
// 4.2 fails such a dump with "Can't get rlimit 0".
func ReadsLimitsFromProc(ctx context.Context, path string) bool {
	if path == "" {
		path = "criu"
	}
	bin, err := exec.LookPath(path)
	return err == nil && checkFeature(ctx, bin, "rlimits_proc")
}

func checkFeature(ctx context.Context, bin, feature string) bool {
	return exec.CommandContext(ctx, bin, "check", "--feature", feature).Run() == nil
}
