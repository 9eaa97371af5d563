//go:build linux

package migrate

import (
	"errors"
	"fmt"

	"github.com/dockmove/dockmove/transfer"
)

// ErrStrategyUnavailable reports a strategy the hosts cannot run, before
// anything is frozen.
var ErrStrategyUnavailable = errors.New("strategy not available")

// chooseStrategy resolves the requested strategy against what both hosts'
// kernels and CRIU allow, and says why.
func chooseStrategy(requested string, local, peer transfer.CRIUInfo) (strategy, reason string, err error) {
	lazyOK := local.LazyPages && peer.LazyPages
	var missing string
	switch {
	case !local.LazyPages && !peer.LazyPages:
		missing = "neither host has userfaultfd (criu check --feature uffd-noncoop)"
	case !local.LazyPages:
		missing = "the source has no userfaultfd (criu check --feature uffd-noncoop)"
	case !peer.LazyPages:
		missing = "the destination has no userfaultfd (criu check --feature uffd-noncoop)"
	}
	switch requested {
	case transfer.StrategyStopAndCopy:
		return requested, "requested", nil
	case transfer.StrategyLazy:
		if !lazyOK {
			return "", "", fmt.Errorf("%w: lazy: %s", ErrStrategyUnavailable, missing)
		}
		return requested, "requested", nil
	case transfer.StrategyAuto:
		if lazyOK {
			return transfer.StrategyLazy, "auto: userfaultfd on both hosts, so memory follows after the restart; pre-copy is not implemented yet", nil
		}
		return transfer.StrategyStopAndCopy, "auto: " + missing, nil
	}
	return "", "", fmt.Errorf("%w: unknown strategy %q", ErrStrategyUnavailable, requested)
}
