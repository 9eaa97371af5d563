package lazypages

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"time"

	"github.com/dockmove/dockmove/transfer"
)

// Serve connects the destination's page requests, arriving on the session's
// page tunnel, to the source's CRIU page server at addr, until ctx ends.
// counted, if set, gets the bytes of page data sent so far, and wire what
// they took on the wire (compressed, framed).
//
// The requests pass through closeGuard: CRIU's page server takes the end
// of its connection for "every page delivered" and ends the original, so
// an end that does not follow the lazy-pages daemon's CLOSE request (the
// daemon was killed, its agent died) reaches it as a reset instead, and
// CRIU resumes the original.
func Serve(ctx context.Context, sess *transfer.Session, addr string, counted, wire func(int64)) error {
	return sess.ServeTunnel(ctx, Stream, addr, transfer.TunnelOptions{
		Counted:  counted,
		Wire:     wire,
		FromPeer: func(r io.Reader) io.Reader { return &closeGuard{r: r} },
	})
}

// The lazy-pages daemon's requests to the page server are fixed frames,
// struct page_server_iov {u32 cmd; u64 nr_pages; u64 vaddr; u64 dst_id}
// in the host's byte order (little-endian on the architectures CRIU's lazy
// pages run on), with no payload: GET, and CLOSE when every page arrived.
const (
	iovSize  = 32
	cmdMask  = 0xffff // the high half carries pagemap flags
	cmdClose = 0x1023
)

// ErrEndWithoutClose reports a page request stream that ended without the
// daemon's CLOSE: the daemon did not finish.
var ErrEndWithoutClose = errors.New("lazypages: the page requests ended without CLOSE")

// frames follows the request frames in a byte stream.
type frames struct {
	frame [iovSize]byte
	have  int    // bytes of the current frame seen
	last  uint32 // the command of the last whole frame
}

// feed takes the stream's next bytes b and calls whole, unless it returned
// false already, at each frame completed in b with its end in b and its
// command.
func (f *frames) feed(b []byte, whole func(end int, cmd uint32) bool) {
	for i, c := range b {
		f.frame[f.have] = c
		if f.have++; f.have < iovSize {
			continue
		}
		f.have = 0
		f.last = binary.LittleEndian.Uint32(f.frame[:4]) & cmdMask
		if !whole(i+1, f.last) {
			return
		}
	}
}

// closeGuard passes the request stream through, and turns its end into
// ErrEndWithoutClose unless the last whole frame was CLOSE.
type closeGuard struct {
	r io.Reader
	f frames
}

func (g *closeGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	g.f.feed(p[:n], func(int, uint32) bool { return true })
	if err == io.EOF && (g.f.have != 0 || g.f.last != cmdClose) {
		err = ErrEndWithoutClose
	}
	return n, err
}

// Abort makes a lazy dump's page server at addr fail, so that CRIU resumes
// the original: a client that connects and resets is an error to it, where
// a clean close would mean "every page delivered". A page server that has
// already a client is aborted through that client's connection instead.
// It reports whether a page server was there to abort: CRIU listens only
// once its post-dump notification returned, so a caller that saw the
// session die earlier must try again (AbortWhenListening).
func Abort(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
	return true
}

// AbortWhenListening aborts the page server at addr as soon as it listens,
// trying every interval until it did or ctx ends (the dump is over).
func AbortWhenListening(ctx context.Context, addr string, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for !Abort(addr) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
