//go:build linux

package migrate

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/dockmove/dockmove/internal/cli"
	"github.com/dockmove/dockmove/transfer"
)

// Each phase of an incoming migration has a deadline as a whole, on top
// of the idle timeout, the rate floor and the peer wait, which each bound
// one wait or one stream: a source that keeps a tunnel trickling (which
// counts as its being at work), or that never sends its commit, must not
// hold the container's name, what was staged for it and its streams for
// ever. A phase may last the peer wait (for the source's work in it: a
// dump, say) plus what it may carry at the streams' rate floor
// (transfer.Config.StreamMinRate; 0 turns the deadlines off with the
// floor).
//
// The phases: "prepare" (the image, docker-init and logs sent before the
// freeze; creating the container), "pre-copy round N" (one round each),
// "transfer" (the final dump's streams and the request to restore) and
// "commit" (the source's commit after the copy runs here: in post-copy,
// with every page). The restore itself is bounded by DestConfig's
// RestoreTimeout.

// phaseLimit is how long a phase that may carry that many bytes may last,
// and false when phases have no deadline. It saturates: announced sizes
// must not overflow into a short deadline.
func (in *incoming) phaseLimit(carried int64) (time.Duration, bool) {
	t := in.srv.cfg.Transfer
	if t.StreamMinRate <= 0 {
		return 0, false
	}
	secs := carried / t.StreamMinRate
	if secs > (math.MaxInt64-int64(t.PeerWaitTimeout))/int64(time.Second) {
		return math.MaxInt64, true
	}
	return t.PeerWaitTimeout + time.Duration(secs)*time.Second, true
}

// phase runs f, the migration's phase name, which may carry that many
// bytes, within the phase's deadline; the phase's deadline is its error
// when it ends f.
func (in *incoming) phase(ctx context.Context, name string, carried int64, f func(context.Context) error) error {
	d, ok := in.phaseLimit(carried)
	if !ok {
		return f(ctx)
	}
	t := in.srv.cfg.Transfer
	why := fmt.Sprintf("the peer wait of %v", t.PeerWaitTimeout)
	if carried > 0 {
		why += fmt.Sprintf(" plus %s, what it may carry, at the rate floor of %s/s", cli.Size(carried), cli.Size(t.StreamMinRate))
	}
	pctx, cancel := context.WithTimeoutCause(ctx, d, fmt.Errorf("%w: the %s phase of the migration did not end within %v (%s): "+
		"the source sends too slowly or holds the migration; check the link between the hosts and the source's log, then migrate again",
		transfer.ErrIdle, name, d, why))
	defer cancel()
	err := f(pctx)
	if err != nil && pctx.Err() != nil && ctx.Err() == nil {
		err = context.Cause(pctx)
	}
	return err
}

// prepareCarries is what the prepare phase may carry: the image, the
// docker-init and the logs sent before the freeze.
func (in *incoming) prepareCarries() int64 {
	z := in.pre.Sizes
	var init int64
	if b := in.pre.Container.InitBinary; b != nil {
		init = b.Size
	}
	n := satAdd(allowance(z.Image), init)
	if in.pre.Logs != "" {
		n = satAdd(n, in.logsPolicy().MaxTotalSize)
	}
	return n
}

// transferCarries is what the transfer phase may carry: the final dump's
// streams, each within its allowance, and its pages when they come on a
// stream of their own.
func (in *incoming) transferCarries() int64 {
	z := in.pre.Sizes
	n := allowance(z.Memory)
	if in.pre.RemotePages {
		n = satAdd(n, allowance(z.Memory))
	}
	for _, more := range []int64{z.Rootfs, z.Volumes, z.Binds} {
		if more > 0 {
			n = satAdd(n, allowance(more))
		}
	}
	if in.pre.Logs != "" {
		n = satAdd(n, in.logsPolicy().MaxTotalSize)
	}
	return n
}

// commitCarries is what the commit phase may carry: in post-copy, the
// pages the restored copy still lacks; else nothing (the source only
// records its decision, lets CRIU end the original and says so).
func (in *incoming) commitCarries() int64 {
	if in.pre.Strategy.PostCopy() {
		return allowance(in.pre.Sizes.Memory)
	}
	return 0
}
