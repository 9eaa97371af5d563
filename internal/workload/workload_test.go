package workload

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

func TestMemoryDetectsCorruption(t *testing.T) {
	tests := []struct {
		name    string
		corrupt func(m *Memory)
		wantBad int
	}{
		{"untouched", func(*Memory) {}, 0},
		{"dirtied pages stay valid", func(m *Memory) { m.Dirty(1); m.Dirty(1); m.Dirty(7) }, 0},
		{"flipped byte", func(m *Memory) { m.buf[3*PageSize+17] ^= 0x40 }, 1},
		{"stale page after lost write", func(m *Memory) { m.gens[5]++ }, 1},
		{"zeroed page", func(m *Memory) { clear(m.page(2)); clear(m.page(6)) }, 2},
		{"pages swapped", func(m *Memory) {
			a := append([]byte(nil), m.page(0)...)
			copy(m.page(0), m.page(1))
			copy(m.page(1), a)
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMemory(make([]byte, 8*PageSize))
			tt.corrupt(m)
			if got := m.Verify(); got != tt.wantBad {
				t.Fatalf("Verify() = %d bad pages, want %d", got, tt.wantBad)
			}
		})
	}
}

func TestParseBeat(t *testing.T) {
	want := Beat{Seq: 1, Counter: 2, Rounds: 3, Bad: 4, Pages: 5, Dirtied: 6, Run: 7}
	got, err := ParseBeat(want.String())
	if err != nil || got != want {
		t.Fatalf("round trip: got %+v, %v; want %+v", got, err, want)
	}
	bad := []struct{ name, line string }{
		{"empty", ""},
		{"missing field", "seq=1 counter=2 rounds=3 bad=4 pages=5 dirtied=6"},
		{"unknown key", "seq=1 counter=2 rounds=3 bad=4 pages=5 dirtied=6 extra=7"},
		{"not a number", "seq=x counter=2 rounds=3 bad=4 pages=5 dirtied=6 run=7"},
		{"negative", "seq=-1 counter=2 rounds=3 bad=4 pages=5 dirtied=6 run=7"},
		{"no equals", "seq counter=2 rounds=3 bad=4 pages=5 dirtied=6 run=7"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseBeat(tt.line); err == nil {
				t.Fatalf("ParseBeat(%q) succeeded", tt.line)
			}
		})
	}
}

func FuzzParseBeat(f *testing.F) {
	f.Add("seq=1 counter=2 rounds=3 bad=4 pages=5 dirtied=6 run=7")
	f.Add("seq= counter==2")
	f.Fuzz(func(t *testing.T, line string) {
		b, err := ParseBeat(line)
		if err == nil && !strings.Contains(line, "=") {
			t.Fatalf("accepted %q as %+v", line, b)
		}
	})
}

func TestServerOverLoopback(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MemMiB = 1
	cfg.Listen = "127.0.0.1:0"
	cfg.DirtyPagesPerSec = 5000
	cfg.Tick = 2 * time.Millisecond
	cfg.VerifyEvery = 0
	w, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), make([]byte, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	served := make(chan error, 1)
	go func() { served <- w.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	watch, err := Watch(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.WaitBeats(ctx, 20); err != nil {
		t.Fatal(err)
	}
	b, err := Query(ctx, addr, CmdVerify)
	if err != nil {
		t.Fatal(err)
	}
	if b.Rounds != 1 || b.Bad != 0 || b.Pages != 256 || b.Dirtied == 0 {
		t.Fatalf("after verify: %+v", b)
	}
	s := watch.Stop()
	if s.SeqBreaks != 0 || s.Resets != 0 || s.Err != nil || s.Last.Counter <= s.First.Counter {
		t.Fatalf("stream stats: %+v", s)
	}
	// Every page write was timed; asking again starts the count afresh.
	st, err := QueryStalls(ctx, addr)
	if err != nil || st.Writes == 0 || st.Writes > b.Dirtied+100 {
		t.Fatalf("stalls: %+v, %v (dirtied %d)", st, err, b.Dirtied)
	}
	if again, err := QueryStalls(ctx, addr); err != nil || again.Writes >= st.Writes {
		t.Fatalf("stalls asked again: %+v, %v (first %+v)", again, err, st)
	}
}

// TestStallHistogramWithFakeDurations: stalls are the writes of StallMin
// or longer; their percentiles come within a bucket's width, the maximum
// exactly, and taking the figures starts afresh.
func TestStallHistogramWithFakeDurations(t *testing.T) {
	var h stallHist
	for range 1000 {
		h.add(3 * time.Microsecond)
	}
	for range 98 {
		h.add(time.Millisecond)
	}
	h.add(20 * time.Millisecond)
	h.add(30 * time.Millisecond)
	h.add(500 * time.Millisecond)
	s := h.take()
	near := func(got, want time.Duration) bool { return got >= want && float64(got) <= 1.1*float64(want) }
	if s.Writes != 1101 || s.Count != 101 || !near(s.P50, time.Millisecond) || !near(s.P99, 30*time.Millisecond) || s.Max != 500*time.Millisecond {
		t.Fatalf("stalls: %+v", s)
	}
	if again := h.take(); again != (Stalls{}) {
		t.Fatalf("after take: %+v", again)
	}
	line := s.String()
	back, err := ParseStalls(line)
	if err != nil || back.String() != line {
		t.Fatalf("ParseStalls(%q) = %+v, %v", line, back, err)
	}
	for _, bad := range []string{"", "writes=1 stalls=1 p50_us=1 p99_us=1", "writes=1 stalls=x p50_us=1 p99_us=1 max_us=1", "writes=1 stalls=1 p50_us=1 p99_us=1 max=1"} {
		if _, err := ParseStalls(bad); err == nil {
			t.Errorf("ParseStalls(%q) accepted it", bad)
		}
	}
}

// TestWatcherCutMidLine: after a stall, TCP may deliver a heartbeat line in
// two segments. A Stop between them is the watcher's own doing and no fault
// of the stream; a connection that ends mid-line is one.
func TestWatcherCutMidLine(t *testing.T) {
	for _, stop := range []bool{true, false} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		sent := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				close(sent)
				return
			}
			io.WriteString(c, Beat{Seq: 1, Counter: 7}.String()+"\n"+Beat{Seq: 2, Counter: 8}.String()+"\nseq=")
			sent <- c
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		watch, err := Watch(ctx, ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if err := watch.WaitBeats(ctx, 2); err != nil {
			t.Fatal(err)
		}
		c := <-sent
		var s WatchStats
		if stop {
			s = watch.Stop()
		} else {
			c.Close()
			<-watch.done
			s = watch.Stats()
		}
		if stop && (s.Err != nil || s.Beats != 2) {
			t.Errorf("stopped between two segments of a line: %+v", s)
		}
		if !stop && (s.Err == nil || !strings.Contains(s.Err.Error(), "4 bytes of an unfinished line")) {
			t.Errorf("stream cut mid-line by the peer: %+v", s)
		}
		if c != nil {
			c.Close()
		}
		ln.Close()
		cancel()
	}
}

// A flood keeps both directions moving in sequence, on loopback; a record
// out of sequence ends it.
func TestFloodBothWays(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	w, err := New(Config{MemMiB: 1, Tick: 10 * time.Millisecond, Listen: ln.Addr().String()}, slog.New(slog.NewTextHandler(io.Discard, nil)), make([]byte, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go w.serve(ctx, ln)
	fl, err := StartFlood(ctx, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if err := fl.WaitFlowing(ctx, FloodReadRate/floodRecord); err != nil {
		t.Fatal(err)
	}
	s := fl.Stop()
	if s.Err != nil || s.Sent <= s.PeerGot {
		t.Fatalf("flood: %+v (the client should have written more than the workload read)", s)
	}
}
