//go:build linux

package bench

import (
	"context"
	"sync"
	"time"

	"github.com/dockmove/dockmove/internal/workload"
)

// poller asks the workload for its status every few milliseconds over a
// new connection each time, and records the longest time without an answer.
type poller struct {
	mu      sync.Mutex
	last    time.Time
	maxGap  time.Duration
	answers int
	paused  bool
	idle    chan struct{} // receives when the loop sees a pause
	cancel  context.CancelFunc
	done    chan struct{}
}

func startPoller(ctx context.Context, addr string) *poller {
	ctx, cancel := context.WithCancel(ctx)
	p := &poller{cancel: cancel, done: make(chan struct{}), idle: make(chan struct{}), last: time.Now()}
	go func() {
		defer close(p.done)
		for ctx.Err() == nil {
			if p.isPaused() {
				select {
				case p.idle <- struct{}{}:
				case <-time.After(5 * time.Millisecond):
				}
				continue
			}
			qctx, c := context.WithTimeout(ctx, 100*time.Millisecond)
			_, err := workload.Query(qctx, addr, workload.CmdStatus)
			c()
			if err == nil {
				p.answered(time.Now())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return p
}

func (p *poller) answered(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if gap := now.Sub(p.last); gap > p.maxGap {
		p.maxGap = gap
	}
	p.last = now
	p.answers++
}

func (p *poller) isPaused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}

// pause stops querying and returns once no query is in flight: Docker's
// checkpoint refuses a container with an established TCP connection. The
// time paused counts in the gap, as the service was unavailable to a
// client that waited.
func (p *poller) pause() {
	p.mu.Lock()
	p.paused = true
	p.mu.Unlock()
	select {
	case <-p.idle:
	case <-p.done:
	}
}

func (p *poller) resume() {
	p.mu.Lock()
	p.paused = false
	p.mu.Unlock()
}

// waitAnswers waits for n more answers (or ctx).
func (p *poller) waitAnswers(ctx context.Context, n int) {
	p.mu.Lock()
	want := p.answers + n
	p.mu.Unlock()
	for ctx.Err() == nil {
		p.mu.Lock()
		got := p.answers
		p.mu.Unlock()
		if got >= want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends polling and returns the longest gap.
func (p *poller) stop() time.Duration {
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxGap
}
