package migrate

import (
	"io"
	"strings"
	"testing"
)

// A page stream passes its limit's worth of bytes and fails on the byte
// after, naming the limit and telling its over callback: a source cannot fill host2's disk through its
// page server.
func TestPageStreamIsBounded(t *testing.T) {
	n, err := io.Copy(io.Discard, &boundedReader{r: strings.NewReader(strings.Repeat("p", 100)), limit: 100})
	if err != nil || n != 100 {
		t.Fatalf("100 bytes under a limit of 100: %d, %v", n, err)
	}
	var heard []error
	n, err = io.Copy(io.Discard, &boundedReader{r: strings.NewReader(strings.Repeat("p", 101)), limit: 100, over: func(err error) { heard = append(heard, err) }})
	if err == nil || !strings.Contains(err.Error(), "more than 100 B") {
		t.Fatalf("101 bytes under a limit of 100: %d, %v", n, err)
	}
	// The migration hears of it at once (it fails, and the source's CRIU,
	// blocked on the stream, is let go).
	if len(heard) != 1 || heard[0] != err {
		t.Fatalf("over heard %v, want the error once", heard)
	}
}
