package lazypages

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func frame(cmd uint32) []byte {
	b := make([]byte, iovSize)
	binary.LittleEndian.PutUint32(b, cmd)
	binary.LittleEndian.PutUint64(b[8:], 1)
	return b
}

// TestCloseGuardPassesOnlyAFinishedStream: the page server may see a clean
// end only after the daemon's CLOSE; anything else ends in an error, which
// the tunnel turns into a reset.
func TestCloseGuardPassesOnlyAFinishedStream(t *testing.T) {
	get := frame(7 | 2<<16)
	for _, tc := range []struct {
		name   string
		stream []byte
		clean  bool
	}{
		{"GETs then CLOSE", bytes.Join([][]byte{get, get, frame(cmdClose)}, nil), true},
		{"CLOSE with flags in the high half", frame(cmdClose | 4<<16), true},
		{"GETs only: the daemon died", bytes.Join([][]byte{get, get}, nil), false},
		{"nothing at all", nil, false},
		{"CLOSE cut short", frame(cmdClose)[:20], false},
		{"CLOSE then half a frame", append(frame(cmdClose), get[:5]...), false},
		{"FORCE_CLOSE is not CLOSE", frame(0x1024), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// One byte per read: frames split anywhere must be followed.
			got, err := io.ReadAll(&closeGuard{r: iotest.OneByteReader(bytes.NewReader(tc.stream))})
			if !bytes.Equal(got, tc.stream) {
				t.Fatalf("passed %d of %d bytes", len(got), len(tc.stream))
			}
			if clean := err == nil; clean != tc.clean {
				t.Fatalf("err %v, want clean end %v", err, tc.clean)
			}
			if err != nil && !errors.Is(err, ErrEndWithoutClose) {
				t.Fatalf("err %v", err)
			}
		})
	}
}
