package bench

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/lab/labtest"
)

// TestLinkProfileShapesTheLink shapes the lab's link to 1 Gbit/s and
// sends 48 MiB from host1 to host2 over it: the transfer goes no faster
// than the profile (and not absurdly slower); while shaped, the bench
// refuses to start on the link; undone, it is the veth again.
func TestLinkProfileShapesTheLink(t *testing.T) {
	h1, h2 := labtest.Require(t)
	labtest.RequireBinary(t, "tc")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := checkUnshaped(ctx, h1, h2); err != nil {
		t.Fatal(err)
	}
	p, err := linkProfile("1gbit")
	if err != nil {
		t.Fatal(err)
	}
	undo, err := shape(ctx, p, h1, h2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(undo)
	if err := checkUnshaped(ctx, h1, h2); !errors.Is(err, errShaped) {
		t.Fatalf("a shaped link passes the check: %v", err)
	}
	const size = 48 << 20
	bits := float64(size*8) / sendOver(t, ctx, h1, h2, size).Seconds()
	t.Logf("shaped to %d bit/s: %.2f Gbit/s", p.Bits, bits/1e9)
	if bits > 1.1*float64(p.Bits) || bits < 0.3*float64(p.Bits) {
		t.Fatalf("%.2f Gbit/s over a link shaped to %d bit/s", bits/1e9, p.Bits)
	}
	undo()
	if err := checkUnshaped(ctx, h1, h2); err != nil {
		t.Fatalf("after undo: %v", err)
	}
	if _, err := linkProfile("56k"); err == nil {
		t.Fatal("an unknown profile was accepted")
	}
}

// sendOver sends size bytes from h1 to h2 over the lab link and returns
// how long the receiver took to get them all.
func sendOver(t *testing.T, ctx context.Context, h1, h2 lab.Host, size int64) time.Duration {
	t.Helper()
	ln, err := h2.Listen("tcp4", net.JoinHostPort(h2.Addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan error, 1)
	var took time.Duration
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err
			return
		}
		defer c.Close()
		start := time.Now()
		_, err = io.CopyN(io.Discard, c, size)
		took = time.Since(start)
		got <- err
	}()
	c, err := h1.Dial(ctx, "tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.CopyN(c, zeros{}, size); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	return took
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
