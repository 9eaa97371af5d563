package transfer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
)

// A tunnel stream carries its TCP connection's bytes in frames, each what
// one read from the service returned: a 4-byte big-endian header (the top
// bit set when the payload is zstd-compressed, the rest its length) and
// the payload. A frame goes out as soon as its bytes were read, so a small
// request is not held back to fill a block; each frame is compressed on its
// own (memory pages compress well one read at a time) and sent raw when
// compression would not pay (after such frames, attempts back off as in
// directory streams, so incompressible memory costs little CPU).
const (
	frameCompressed = 1 << 31
	// maxTunnelFrame bounds a frame's payload and what it decodes to: a
	// read from the service is at most io.Copy's 32 KiB; a peer's frame
	// larger than this is refused.
	maxTunnelFrame = 256 << 10
)

// ErrTunnelFrame reports a tunnel frame that breaks the format: too
// large, or a payload that does not decode.
var ErrTunnelFrame = errors.New("transfer: bad tunnel frame")

// framedConn is a tunnel stream seen as the byte stream it carries: Write
// sends one frame, Read returns frames' contents in order.
type framedConn struct {
	net.Conn
	comp  compressor // its encoder nil: every frame raw
	dec   *zstd.Decoder
	wire  *atomic.Int64 // bytes written to the stream, headers included
	sent  func(int64)   // if set, told wire's new total after each frame
	heard *atomic.Int64 // if set, the time (Unix ns) each frame arrived

	out     []byte // the frame being written
	zbuf    []byte // its compressed payload, after the raw length
	in      []byte // the current frame's decoded contents not yet read
	payload []byte
	decoded []byte // f.in's backing array, reused once it was read
}

func newFramedConn(st net.Conn, enc *zstd.Encoder, dec *zstd.Decoder) *framedConn {
	return &framedConn{Conn: st, comp: compressor{enc: enc}, dec: dec, wire: new(atomic.Int64)}
}

// Write sends p as one frame (or several, if p is larger than a frame).
func (f *framedConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxTunnelFrame)]
		head := uint32(len(chunk))
		payload := chunk
		if typ, z := f.comp.chunk(chunk, &f.zbuf); typ == recZstd {
			payload = z[4:] // (the compressor puts the raw length first)
			head = frameCompressed | uint32(len(payload))
		}
		f.out = append(append(f.out[:0], 0, 0, 0, 0), payload...)
		binary.BigEndian.PutUint32(f.out, head)
		if _, err := f.Conn.Write(f.out); err != nil {
			return written, err
		}
		if total := f.wire.Add(int64(len(f.out))); f.sent != nil {
			f.sent(total)
		}
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

// Read returns the contents of the frames received, in order; io.EOF
// only at a frame boundary (a stream cut inside a frame is
// io.ErrUnexpectedEOF).
func (f *framedConn) Read(p []byte) (int, error) {
	for len(f.in) == 0 {
		var h [4]byte
		if _, err := io.ReadFull(f.Conn, h[:1]); err != nil {
			return 0, err // io.EOF here is the clean end
		}
		if _, err := io.ReadFull(f.Conn, h[1:]); err != nil {
			return 0, noEOF(err)
		}
		head := binary.BigEndian.Uint32(h[:])
		n := int(head &^ frameCompressed)
		if n == 0 || n > maxTunnelFrame {
			return 0, fmt.Errorf("%w: payload of %d bytes (at most %d)", ErrTunnelFrame, n, maxTunnelFrame)
		}
		if cap(f.payload) < n {
			f.payload = make([]byte, n)
		}
		f.payload = f.payload[:n]
		if _, err := io.ReadFull(f.Conn, f.payload); err != nil {
			return 0, noEOF(err)
		}
		if f.heard != nil {
			f.heard.Store(time.Now().UnixNano())
		}
		if head&frameCompressed == 0 {
			f.in = f.payload
			continue
		}
		out, err := f.dec.DecodeAll(f.payload, f.decoded[:0])
		if err != nil || len(out) == 0 || len(out) > maxTunnelFrame {
			return 0, fmt.Errorf("%w: compressed payload decodes to %d bytes: %v", ErrTunnelFrame, len(out), err)
		}
		f.decoded, f.in = out, out
	}
	n := copy(p, f.in)
	f.in = f.in[n:]
	return n, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
