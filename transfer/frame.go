package transfer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// DefaultMaxFrame is the largest control frame accepted by default (1 MiB).
const DefaultMaxFrame = 1 << 20

// frameHeaderLen is the length prefix (4 bytes) plus the message type (2).
const frameHeaderLen = 6

// writeFrame writes one control frame: a big-endian uint32 length of what
// follows, a big-endian uint16 message type, then the payload.
func writeFrame(w io.Writer, typ MsgType, payload []byte, max int) error {
	if len(payload)+2 > max {
		return fmt.Errorf("%w: %d bytes for %s, limit %d", ErrFrameTooLarge, len(payload)+2, typ, max)
	}
	buf := make([]byte, frameHeaderLen+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(len(payload)+2))
	binary.BigEndian.PutUint16(buf[4:], uint16(typ))
	copy(buf[frameHeaderLen:], payload)
	_, err := w.Write(buf)
	return err
}

// readFrame reads one control frame, refusing lengths over max before
// allocating. A stream that ends inside a frame gives ErrTruncated; one that
// ends cleanly between frames gives io.EOF.
func readFrame(r io.Reader, max int) (MsgType, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return 0, nil, fmt.Errorf("%w: inside a frame header", ErrTruncated)
		}
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 2 {
		return 0, nil, fmt.Errorf("%w: frame length %d is shorter than its type", ErrBadMessage, n)
	}
	if int64(n) > int64(max) {
		return 0, nil, fmt.Errorf("%w: %d bytes announced, limit %d", ErrFrameTooLarge, n, max)
	}
	// Memory follows the bytes that arrive, not the length announced: a
	// peer announcing a full frame and sending nothing costs 64 KiB.
	var body bytes.Buffer
	body.Grow(int(min(n, 64<<10)))
	if _, err := io.CopyN(&body, r, int64(n)); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, fmt.Errorf("%w: frame of %d bytes: %v", ErrTruncated, n, err)
	}
	b := body.Bytes()
	return MsgType(binary.BigEndian.Uint16(b)), b[2:], nil
}
