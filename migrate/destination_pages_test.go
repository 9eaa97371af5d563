package migrate

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/dockmove/dockmove/transfer"
)

// A page stream passes its limit's worth of bytes and fails on the byte
// after, naming the limit: a source cannot fill host2's disk through its
// page server.
func TestPageStreamIsBounded(t *testing.T) {
	n, err := io.Copy(io.Discard, &boundedReader{r: strings.NewReader(strings.Repeat("p", 100)), left: 100, limit: 100})
	if err != nil || n != 100 {
		t.Fatalf("100 bytes under a limit of 100: %d, %v", n, err)
	}
	n, err = io.Copy(io.Discard, &boundedReader{r: strings.NewReader(strings.Repeat("p", 101)), left: 100, limit: 100})
	if !errors.Is(err, transfer.ErrTooLarge) || !strings.Contains(err.Error(), "100 B") {
		t.Fatalf("101 bytes under a limit of 100: %d, %v", n, err)
	}
}
