// Package protocol is the migration's exchange between migrate-src and
// migrate-dst: the messages they send over a transfer session, what a
// container or process is described by, the names of the streams, the
// strategies, and the checks the destination applies to everything it
// receives. The exchange is written down in spec.md next to this file;
// transfer carries it and knows nothing of it.
package protocol

import "github.com/dockmove/dockmove/transfer"

func init() {
	for _, m := range []struct {
		t       transfer.MsgType
		name    string
		newFunc func() transfer.Message
	}{
		{MsgPreflight, "preflight", func() transfer.Message { return new(Preflight) }},
		{MsgPreflightOK, "preflight-ok", func() transfer.Message { return new(PreflightOK) }},
		{MsgRestore, "restore", func() transfer.Message { return new(Restore) }},
		{MsgRestored, "restored", func() transfer.Message { return new(Restored) }},
		{MsgCommit, "commit", func() transfer.Message { return new(Commit) }},
		{MsgDone, "done", func() transfer.Message { return new(Done) }},
		{MsgPreRound, "pre-round", func() transfer.Message { return new(PreRound) }},
		{MsgResolve, "resolve", func() transfer.Message { return new(Resolve) }},
		{MsgOutcome, "outcome", func() transfer.Message { return new(Outcome) }},
	} {
		transfer.Register(m.t, m.name, m.newFunc)
	}
}
