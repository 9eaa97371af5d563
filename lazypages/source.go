package lazypages

import (
	"context"

	"github.com/dockmove/dockmove/transfer"
)

// Serve connects the destination's page requests, arriving on the session's
// page tunnel, to the source's CRIU page server at addr, until ctx ends.
// counted, if set, gets the bytes of page data sent so far.
func Serve(ctx context.Context, sess *transfer.Session, addr string, counted func(int64)) error {
	return sess.ServeTunnel(ctx, Stream, addr, counted)
}
