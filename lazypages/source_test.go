package lazypages

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
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

// TestAbortWaitsForALatePageServer: the session may die before CRIU
// listens; the abort must reach the page server once it does, with a
// reset (a clean close would tell CRIU every page was delivered), or
// CRIU waits for a client forever with the original frozen.
func TestAbortWaitsForALatePageServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // CRIU has not listened yet
	if Abort(addr) {
		t.Fatal("Abort reported a page server where none listens")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	aborted := make(chan struct{})
	go func() {
		AbortWhenListening(ctx, addr, 20*time.Millisecond)
		close(aborted)
	}()
	time.Sleep(200 * time.Millisecond)
	late, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s (taken meanwhile?): %v", addr, err)
	}
	defer late.Close()
	c, err := late.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the page server read %v, want a reset", err)
	}
	<-aborted

	// A dump that ends first (no page server ever listens) ends the wait.
	late.Close()
	ctx2, cancel2 := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { AbortWhenListening(ctx2, addr, 20*time.Millisecond); close(done) }()
	time.Sleep(100 * time.Millisecond)
	cancel2()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("AbortWhenListening outlived its context")
	}
}
