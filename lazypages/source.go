package lazypages

import (
	"context"
	"net"
	"time"

	"github.com/dockmove/dockmove/transfer"
)

// Serve connects the destination's page requests, arriving on the session's
// page tunnel, to the source's CRIU page server at addr, until ctx ends.
// counted, if set, gets the bytes of page data sent so far.
func Serve(ctx context.Context, sess *transfer.Session, addr string, counted func(int64)) error {
	return sess.ServeTunnel(ctx, Stream, addr, counted)
}

// Abort makes a lazy dump's page server at addr fail, so that CRIU resumes
// the original: a client that connects and resets is an error to it, where
// a clean close would mean "every page delivered". A page server that has
// already a client is aborted through that client's connection instead.
func Abort(addr string) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
