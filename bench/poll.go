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
	cancel  context.CancelFunc
	done    chan struct{}
}

func startPoller(ctx context.Context, addr string) *poller {
	ctx, cancel := context.WithCancel(ctx)
	p := &poller{cancel: cancel, done: make(chan struct{}), last: time.Now()}
	go func() {
		defer close(p.done)
		for ctx.Err() == nil {
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
