//go:build linux

package migrate

import (
	"errors"
	"fmt"

	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

// ErrStrategyUnavailable reports a strategy the hosts cannot run, before
// anything is frozen.
var ErrStrategyUnavailable = errors.New("strategy not available")

// Why a kernel feature a strategy needs is missing, in the user's terms.
const (
	noSoftDirty = "the source's kernel cannot track dirty memory (no soft-dirty bits: CONFIG_MEM_SOFT_DIRTY is off, " +
		"as on arm64 and some cloud kernels; criu check --feature mem_dirty_track fails), so pre-dump rounds are impossible"
	uffdCheck = "(criu check --feature uffd-noncoop)"
)

// chooseStrategy resolves the requested strategy against what both hosts'
// kernels and CRIU allow, and says why. Pre-copy needs dirty-memory
// tracking on the source only; post-copy needs userfaultfd on both hosts.
func chooseStrategy(requested protocol.Strategy, local, peer transfer.CRIUInfo) (strategy protocol.Strategy, reason string, err error) {
	lazyOK := local.LazyPages && peer.LazyPages
	var noLazy string
	switch {
	case !local.LazyPages && !peer.LazyPages:
		noLazy = "neither host has userfaultfd " + uffdCheck
	case !local.LazyPages:
		noLazy = "the source has no userfaultfd " + uffdCheck
	case !peer.LazyPages:
		noLazy = "the destination has no userfaultfd " + uffdCheck
	}
	unavailable := func(why string) (protocol.Strategy, string, error) {
		return "", "", fmt.Errorf("%w: %s: %s", ErrStrategyUnavailable, requested, why)
	}
	switch requested {
	case protocol.StrategyStopAndCopy:
		return requested, "requested", nil
	case protocol.StrategyLazy:
		if !lazyOK {
			return unavailable(noLazy)
		}
		return requested, "requested", nil
	case protocol.StrategyPrecopy:
		if !local.MemTrack {
			return unavailable(noSoftDirty)
		}
		return requested, "requested", nil
	case protocol.StrategyHybrid:
		if !local.MemTrack {
			return unavailable(noSoftDirty)
		}
		if !lazyOK {
			return unavailable(noLazy)
		}
		return requested, "requested", nil
	case protocol.StrategyAuto:
		switch {
		case local.MemTrack && lazyOK:
			return protocol.StrategyHybrid, "auto: dirty-memory tracking on the source and userfaultfd on both hosts: " +
				"pre-copy rounds while the container runs, then memory the last round missed follows after the restart", nil
		case lazyOK:
			return protocol.StrategyLazy, "auto: pre-copy skipped because " + noSoftDirty +
				"; userfaultfd on both hosts, so memory follows after the restart", nil
		case local.MemTrack:
			return protocol.StrategyPrecopy, "auto: dirty-memory tracking on the source, so pre-copy rounds while the container runs; no post-copy because " + noLazy, nil
		}
		return protocol.StrategyStopAndCopy, "auto: pre-copy skipped because " + noSoftDirty + "; no post-copy because " + noLazy, nil
	}
	return "", "", fmt.Errorf("%w: unknown strategy %q", ErrStrategyUnavailable, requested)
}
