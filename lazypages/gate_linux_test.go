package lazypages

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// TestCloseGateHoldsBackCloseOfADeadCopy: the destination passes the
// daemon's requests on, its CLOSE only while the restored process runs;
// otherwise not a byte of the CLOSE goes on (whole frames before it do),
// the stream ends in the check's error, and the daemon's outcome says the
// transfer did not complete. Reads of any size, down to one byte.
func TestCloseGateHoldsBackCloseOfADeadCopy(t *testing.T) {
	get := frame(7 | 2<<16)
	stream := bytes.Join([][]byte{get, get, frame(cmdClose)}, nil)
	dead := errors.New("the restored process ended")
	for _, tc := range []struct {
		name  string
		alive error
		want  []byte
	}{
		{"copy runs", nil, stream},
		{"copy dead", dead, stream[:2*iovSize]},
	} {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = bytes.NewReader(stream)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			d := &Daemon{}
			check := func() error { return tc.alive }
			d.Require(check)
			got, err := io.ReadAll(&closeGate{r: r, allow: d.allowClose})
			if !bytes.Equal(got, tc.want) || !errors.Is(err, tc.alive) {
				t.Fatalf("%s (one byte per read %v): passed %d of %d bytes, err %v", tc.name, oneByte, len(got), len(stream), err)
			}
			if derr := d.Err(); (derr == nil) != (tc.alive == nil) || derr != nil && !errors.Is(derr, ErrIncomplete) {
				t.Fatalf("%s: the daemon's outcome: %v", tc.name, derr)
			}
		}
	}
	if err := (&Daemon{}).Err(); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("a daemon that never said CLOSE: outcome %v, want incomplete", err)
	}
}
