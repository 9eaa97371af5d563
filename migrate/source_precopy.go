//go:build linux

package migrate

import (
	"context"
	"fmt"

	"github.com/dockmove/dockmove/internal/cli"
	"github.com/dockmove/dockmove/internal/criu"
	"github.com/dockmove/dockmove/predump"
	"github.com/dockmove/dockmove/protocol"
)

// precopy runs the pre-dump rounds while the tree keeps running, each
// shipped on its own stream, and points the final dump at the last one.
// A failure here has frozen nothing for longer than a round's page
// collection: the tree runs on, and the destination drops the rounds.
func (s *source) precopy(ctx context.Context, spec *criu.DumpSpec) error {
	s.stageDetail("pre-copy", " (policy "+string(s.cfg.PrecopyPolicy)+")")
	s.report.PrecopyPolicy = s.cfg.PrecopyPolicy
	limits := s.cfg.PrecopyLimits
	s.report.PrecopyLimits = &limits
	res, err := predump.Run(ctx, predump.Config{
		CRIU: s.cfg.CRIU, Dir: s.dir, Spec: *spec, Policy: s.cfg.PrecopyPolicy, Limits: s.cfg.PrecopyLimits,
		Ship: func(ctx context.Context, i int, dir string) (int64, int64, error) {
			if err := s.sess.Send(ctx, &protocol.PreRound{Index: i}); err != nil {
				return 0, 0, err
			}
			name := protocol.RoundStream(i)
			st, err := s.sess.SendDirSkipping(ctx, name, dir, []string{"parent"})
			if err != nil {
				return 0, 0, fmt.Errorf("send %s: %w", name, err)
			}
			s.report.stream(name, st)
			return st.Bytes, st.WireBytes, nil
		},
		Before: func(i int) error {
			if i == 1 {
				return nil // prepareDump has just checked
			}
			return s.treeRefusals(spec.Pid, nil)
		},
		Watch: func(dir string) func() bool { return watchPreDump(dir, *spec, s.cfg.DumpTimeout, s.log) },
		OnRound: func(i int, r predump.Round, d predump.Decision) {
			s.log.Info("pre-copy round", "round", i, "written", r.PagesWritten, "skipped", r.PagesSkipped,
				"frozen", r.Frozen, "bytes", r.Bytes, "stop", d.Stop, "reason", d.Reason)
			next := "next round"
			if d.Stop {
				next = "final dump"
			}
			s.stageDetail(fmt.Sprintf("round %d", i), fmt.Sprintf(": %d pages written, %d unchanged, %s shipped in %.2fs, frozen %d ms; %s: %s",
				r.PagesWritten, r.PagesSkipped, cli.Size(r.Bytes), r.Ship.Seconds(), r.Frozen.Milliseconds(), next, d.Reason))
		},
	})
	s.report.PreCopy = &res
	if err != nil {
		return err
	}
	n := len(res.Rounds)
	if err := s.sess.Send(ctx, &protocol.PreRound{Index: n, Done: true}); err != nil {
		return err
	}
	spec.Parent, spec.TrackMem = predump.Parent(n), true
	return nil
}
