package workload

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// Query sends one command (CmdStatus or CmdVerify) to the workload at addr and
// returns its answer.
func Query(ctx context.Context, addr string, cmd Command) (Beat, error) {
	line, err := ask(ctx, addr, cmd)
	if err != nil {
		return Beat{}, err
	}
	return ParseBeat(line)
}

// QueryStalls asks the workload at addr how long its page writes waited
// since the previous QueryStalls.
func QueryStalls(ctx context.Context, addr string) (Stalls, error) {
	line, err := ask(ctx, addr, CmdStalls)
	if err != nil {
		return Stalls{}, err
	}
	return ParseStalls(line)
}

// ask sends cmd to the workload at addr and returns its one-line answer.
func ask(ctx context.Context, addr string, cmd Command) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("workload %s: %w", cmd, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := fmt.Fprintln(c, cmd); err != nil {
		return "", fmt.Errorf("workload %s: %w", cmd, err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("workload %s: %w", cmd, err)
	}
	return strings.TrimSpace(line), nil
}

// WatchStats is what a Watcher saw of a heartbeat stream.
type WatchStats struct {
	Beats     int           // lines received
	MaxGap    time.Duration // longest time between two consecutive lines
	SeqBreaks int           // lines whose Seq was not the previous one plus 1
	Resets    int           // lines whose Counter went backwards
	First     Beat
	Last      Beat
	Err       error // why the stream ended early, if it did
}

// Watcher reads a heartbeat stream in the background, as a client of the
// containerised service would, and measures the pauses it sees.
type Watcher struct {
	conn   net.Conn
	done   chan struct{}
	mu     sync.Mutex
	stats  WatchStats
	closed bool
}

// Watch connects to addr and starts reading its heartbeat stream.
func Watch(ctx context.Context, addr string) (*Watcher, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("workload watch: %w", err)
	}
	if _, err := fmt.Fprintln(c, CmdStream); err != nil {
		c.Close()
		return nil, fmt.Errorf("workload watch: %w", err)
	}
	w := &Watcher{conn: c, done: make(chan struct{})}
	go w.read()
	return w, nil
}

func (w *Watcher) read() {
	defer close(w.done)
	r := bufio.NewReader(w.conn)
	var last time.Time
	for {
		// Only whole lines count: a stream cut mid-line (by Stop, or by a
		// broken connection) leaves a fragment that is no heartbeat.
		line, err := r.ReadString('\n')
		if err != nil {
			w.mu.Lock()
			if !w.closed {
				w.stats.Err = fmt.Errorf("workload watch: stream ended: %v (after %d bytes of an unfinished line)", err, len(line))
			}
			w.mu.Unlock()
			return
		}
		now := time.Now()
		b, perr := ParseBeat(strings.TrimSuffix(line, "\n"))
		w.mu.Lock()
		if perr != nil {
			w.stats.Err = perr
			w.mu.Unlock()
			return
		}
		w.record(b, now, last)
		w.mu.Unlock()
		last = now
	}
}

func (w *Watcher) record(b Beat, now, last time.Time) {
	s := &w.stats
	if s.Beats == 0 {
		s.First = b
	} else {
		if b.Seq != s.Last.Seq+1 {
			s.SeqBreaks++
		}
		if b.Counter < s.Last.Counter {
			s.Resets++
		}
		if gap := now.Sub(last); gap > s.MaxGap {
			s.MaxGap = gap
		}
	}
	s.Beats++
	s.Last = b
}

// Stats returns what was seen so far.
func (w *Watcher) Stats() WatchStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// WaitBeats blocks until at least n lines have arrived, the stream ends, or
// ctx is done.
func (w *Watcher) WaitBeats(ctx context.Context, n int) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		s := w.Stats()
		if s.Beats >= n {
			return nil
		}
		if s.Err != nil {
			return s.Err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("workload watch: waiting for %d beats (have %d): %w", n, s.Beats, ctx.Err())
		case <-w.done:
			if s := w.Stats(); s.Beats < n {
				return fmt.Errorf("workload watch: stream closed after %d beats", s.Beats)
			}
			return nil
		case <-t.C:
		}
	}
}

// Stop closes the stream and returns the final statistics.
func (w *Watcher) Stop() WatchStats {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.conn.Close()
	<-w.done
	return w.Stats()
}
