package workload

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// CmdFlood makes a connection busy both ways: each side writes records as
// fast as the connection takes them and reads the other's slowly
// (FloodReadRate), so that both directions' send and receive queues stay
// full. A record is 16 bytes: its sequence number (from 1, without gaps)
// and how many records the writer has received so far, so each side sees
// its own stream arrive at the other. A side that reads a record out of
// sequence closes the connection.
const CmdFlood Command = "flood"

// FloodReadRate is how many bytes per second each side of a flood reads:
// far less than either writes, so the queues fill.
const FloodReadRate = 4 << 20

const (
	floodRecord    = 16
	floodReadEvery = 50 * time.Millisecond
)

// flooder is one side of a flood: it writes records and reads the peer's.
type flooder struct {
	c        net.Conn
	sent     atomic.Uint64 // records written
	received atomic.Uint64 // records read, in sequence
	peerGot  atomic.Uint64 // what the peer's last record says it received
}

// run floods c until it fails or ctx ends, returning why.
func (f *flooder) run(ctx context.Context, r io.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		<-ctx.Done()
		f.c.Close()
	}()
	errc := make(chan error, 2)
	go func() { errc <- f.write() }()
	go func() { errc <- f.read(ctx, r) }()
	err := <-errc
	cancel()
	return err
}

func (f *flooder) write() error {
	buf := make([]byte, 64*floodRecord)
	for {
		for i := 0; i < len(buf); i += floodRecord {
			binary.BigEndian.PutUint64(buf[i:], f.sent.Load()+uint64(i/floodRecord)+1)
			binary.BigEndian.PutUint64(buf[i+8:], f.received.Load())
		}
		n, err := f.c.Write(buf)
		f.sent.Add(uint64(n / floodRecord))
		if err != nil {
			return fmt.Errorf("flood write: %w", err)
		}
	}
}

func (f *flooder) read(ctx context.Context, r io.Reader) error {
	rec := make([]byte, floodRecord)
	// A burst every floodReadEvery: between bursts the queues refill, so
	// they are full nearly all the time.
	const chunk = FloodReadRate / int(time.Second/floodReadEvery)
	tick := time.NewTicker(floodReadEvery)
	defer tick.Stop()
	for {
		for i := 0; i < chunk/floodRecord; i++ {
			if _, err := io.ReadFull(r, rec); err != nil {
				return fmt.Errorf("flood read: %w", err)
			}
			seq := binary.BigEndian.Uint64(rec)
			if want := f.received.Load() + 1; seq != want {
				return fmt.Errorf("flood read: record %d after %d", seq, want-1)
			}
			f.received.Store(seq)
			f.peerGot.Store(binary.BigEndian.Uint64(rec[8:]))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// flood serves CmdFlood on c, whose reader br has consumed the command.
func (w *Workload) flood(ctx context.Context, c net.Conn, br *bufio.Reader) {
	f := &flooder{c: c}
	err := f.run(ctx, br)
	w.log.Info("flood ended", "sent", f.sent.Load(), "received", f.received.Load(), "err", err)
}

// FloodStats is what a Flood client saw: records each way.
type FloodStats struct {
	Sent     uint64 // records the client wrote
	Received uint64 // records the client read, in sequence
	PeerGot  uint64 // records of the client's the workload says it read
	Err      error  // why the flood ended, once it has
}

// Flood is a client's side of a CmdFlood connection.
type Flood struct {
	f    *flooder
	stop context.CancelFunc
	done chan struct{}
	mu   sync.Mutex
	err  error
}

// StartFlood connects to the workload at addr and floods the connection
// both ways until Stop.
func StartFlood(ctx context.Context, addr string) (*Flood, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("workload flood: %w", err)
	}
	if _, err := fmt.Fprintln(c, CmdFlood); err != nil {
		c.Close()
		return nil, fmt.Errorf("workload flood: %w", err)
	}
	fctx, stop := context.WithCancel(context.Background())
	fl := &Flood{f: &flooder{c: c}, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(fl.done)
		err := fl.f.run(fctx, c)
		fl.mu.Lock()
		if fctx.Err() == nil {
			fl.err = err
		}
		fl.mu.Unlock()
	}()
	return fl, nil
}

// Stats reports the flood so far.
func (fl *Flood) Stats() FloodStats {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return FloodStats{Sent: fl.f.sent.Load(), Received: fl.f.received.Load(), PeerGot: fl.f.peerGot.Load(), Err: fl.err}
}

// WaitFlowing waits until, from now, both directions have moved at least
// n more records (the client read n more, and the workload says it read n
// more), or the flood fails, or ctx ends.
func (fl *Flood) WaitFlowing(ctx context.Context, n uint64) error {
	start := fl.Stats()
	for {
		s := fl.Stats()
		if s.Err != nil {
			return s.Err
		}
		if s.Received >= start.Received+n && s.PeerGot >= start.PeerGot+n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("flood stalled: from %+v to %+v: %w", start, s, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends the flood and returns its stats.
func (fl *Flood) Stop() FloodStats {
	fl.stop()
	<-fl.done
	s := fl.Stats()
	if errors.Is(s.Err, context.Canceled) {
		s.Err = nil
	}
	return s
}
