package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

// Progress prints, at most twice a second, how many bytes each stream has
// sent and the overall rate: progress for a person at a terminal.
type Progress struct {
	out   io.Writer
	mu    sync.Mutex
	start time.Time
	last  time.Time
	sent  map[string]int64
}

// NewProgress returns a printer to out, or nil when out is not a terminal
// (logs and pipes get the final summary only).
func NewProgress(out *os.File) *Progress {
	if fi, err := out.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return &Progress{out: out, sent: map[string]int64{}}
}

// Update records that stream has sent n bytes in all.
func (p *Progress) Update(stream string, n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.start.IsZero() {
		p.start = now
	}
	p.sent[stream] = n
	if now.Sub(p.last) < 500*time.Millisecond || now.Sub(p.start) < 100*time.Millisecond {
		return
	}
	p.last = now
	var total int64
	var parts []string
	for name, b := range p.sent {
		total += b
		parts = append(parts, name+" "+Size(b))
	}
	sort.Strings(parts)
	rate := float64(total) / now.Sub(p.start).Seconds()
	fmt.Fprintf(p.out, "          %s  (%s/s)\n", strings.Join(parts, ", "), Size(int64(rate)))
}
