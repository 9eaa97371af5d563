package migrate

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/dockmove/dockmove/protocol"
)

// observer is the configured Observer, or one that observes nothing.
func (s *Server) observer() Observer {
	if s.cfg.Observer != nil {
		return s.cfg.Observer
	}
	return noObserver{}
}

type noObserver struct{}

func (noObserver) MigrationStarted(protocol.Strategy) {}
func (noObserver) MigrationEnded(MigrationResult)     {}
func (noObserver) Refused(RefusalReason)              {}

// refused reports the refusal err, unless it is this agent's own shutdown
// (ctx ended).
func (s *Server) refused(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	for _, r := range refusalReasons(err) {
		s.observer().Refused(r)
	}
}

// observeEnd reports the end of the migration, which *err failed (nil:
// committed), once undoOnFailure has run.
func (in *incoming) observeEnd(err *error) {
	res := MigrationResult{Strategy: in.pre.Strategy, Outcome: outcomeOf(in.state, *err)}
	if in.wire != nil {
		res.WireBytes = in.wire.read.Load()
	}
	if in.state.Phase != phasePrepared && in.steps != nil {
		for _, st := range in.steps.steps {
			res.Freeze += time.Duration(st.Micros) * time.Microsecond
		}
		if !in.paged.IsZero() {
			// The copy was reported running at the steps' last mark.
			res.PostCopy = in.paged.Sub(in.steps.last)
		}
	}
	in.srv.observer().MigrationEnded(res)
}

// outcomeOf is the outcome of a migration that err failed (nil:
// committed) in state st, before or after abandon undid it (abandon only
// turns restored into in-doubt).
func outcomeOf(st migrationState, err error) Outcome {
	switch {
	case err == nil || st.Phase == phaseComplete:
		return OutcomeOK // complete: only the commit message was lost
	case st.Phase == phaseInDoubt || st.Phase == phaseRestored && !st.Lazy:
		return OutcomeInDoubt
	case st.Phase == phaseRestored:
		return OutcomeFailed // post-copy: the copy cannot run without its memory
	}
	return OutcomeRolledBack
}

// countingConn counts the bytes read from a session's connection.
type countingConn struct {
	net.Conn
	read atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}
