package transfer

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// framedPair is two framed ends over an in-memory pipe, the writer
// compressing at level (0: never).
func framedPair(t *testing.T, level int) (w, r *framedConn) {
	t.Helper()
	enc, dec, err := newCodecs(level)
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return newFramedConn(a, enc, dec), newFramedConn(b, nil, dec)
}

// TestFramedTunnelRoundTrip: pages (compressible), random bytes (not) and
// small requests arrive whole and in order; pages go compressed, random
// bytes raw (at most a header more per frame), and compression off sends
// everything raw.
func TestFramedTunnelRoundTrip(t *testing.T) {
	page := bytes.Repeat([]byte("page of a redis heap "), 4096/21+1)[:4096]
	random := make([]byte, 32<<10)
	rand.Read(random)
	for _, c := range []struct {
		name     string
		level    int
		data     []byte
		maxRatio float64 // wire / data
	}{
		{"pages compressed", 1, bytes.Repeat(page, 8), 0.2},
		{"random sent raw", 1, random, 1.001},
		{"a small request", 1, []byte("GET 1"), 1.9},
		{"compression off", 0, bytes.Repeat(page, 8), 1.001},
		{"larger than a frame", 1, bytes.Repeat(page, 2*maxTunnelFrame/4096+3), 0.2},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, r := framedPair(t, c.level)
			go func() { w.Write(c.data); w.Conn.Close() }()
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, c.data) {
				t.Fatalf("read %d bytes, want %d; %v", len(got), len(c.data), err)
			}
			if ratio := float64(w.wire.Load()) / float64(len(c.data)); ratio > c.maxRatio {
				t.Fatalf("%d bytes took %d on the wire (%.3f, want at most %.3f)", len(c.data), w.wire.Load(), ratio, c.maxRatio)
			}
		})
	}
}

// TestFramedTunnelRefusesBadFrames: what a hostile or broken peer can send
// ends the stream with a clear error, never a large allocation or a hang.
func TestFramedTunnelRefusesBadFrames(t *testing.T) {
	frame := func(head uint32, payload []byte) []byte {
		b := binary.BigEndian.AppendUint32(nil, head)
		return append(b, payload...)
	}
	for _, c := range []struct {
		name  string
		bytes []byte
		want  error
	}{
		{"too large", frame(maxTunnelFrame+1, nil), ErrTunnelFrame},
		{"huge compressed", frame(frameCompressed|(1<<30), nil), ErrTunnelFrame},
		{"empty", frame(0, nil), ErrTunnelFrame},
		{"not zstd", frame(frameCompressed|5, []byte("hello")), ErrTunnelFrame},
		{"cut in the header", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"cut in the payload", frame(10, []byte("12345")), io.ErrUnexpectedEOF},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, dec, err := newCodecs(0)
			if err != nil {
				t.Fatal(err)
			}
			a, b := net.Pipe()
			defer b.Close()
			r := newFramedConn(b, nil, dec)
			go func() { a.Write(c.bytes); a.Close() }()
			_, err = io.ReadAll(r)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestTunnelRequestAndReplyDoNotWait: a service that answers each small
// request before the next (CRIU's page server answering the lazy-pages
// daemon's page requests) is never kept waiting by the framing: every
// frame goes out as soon as its bytes were read.
func TestTunnelRequestAndReplyDoNotWait(t *testing.T) {
	c, s := sessionPair(t, transports[1])
	ctx := testContext(t)
	svc, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	go func() {
		conn, err := svc.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		req := make([]byte, 32)
		for {
			if _, err := io.ReadFull(conn, req); err != nil {
				return
			}
			conn.Write(bytes.Repeat(req[:8], 512)) // a 4 KiB page
		}
	}()
	var wire, served atomic.Int64
	go s.ServeTunnel(ctx, "pages", svc.Addr().String(), TunnelOptions{
		Counted: func(n int64) { served.Store(n) }, Wire: func(n int64) { wire.Store(n) },
	})
	conn := dialTunnel(t, ctx, c, "pages")
	defer conn.Close()
	page := make([]byte, 4096)
	for i := range 200 {
		req := []byte(strings.Repeat(string(rune('a'+i%26)), 32))
		conn.SetDeadline(time.Now().Add(10 * time.Second)) // a stall, not a timing
		if _, err := conn.Write(req); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(conn, page); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if !bytes.Equal(page[:8], req[:8]) {
			t.Fatalf("reply %d: %q", i, page[:8])
		}
	}
	// Every reply was read, so every frame was counted.
	if served.Load() != 200*4096 || wire.Load() <= 0 || wire.Load() > served.Load()/4 {
		t.Fatalf("served %d bytes of pages, %d on the wire: want 819200, compressed at least 4x", served.Load(), wire.Load())
	}
}
