package workload

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// StallMin is the shortest page write counted as a stall. Rewriting a
// resident page takes a few microseconds; one that post-copy has not
// brought yet waits for a round trip to the source, hundreds of them.
const StallMin = 50 * time.Microsecond

// Stalls is how long the workload's page writes waited, as the process
// felt it, since the previous CmdStalls. Percentiles are of the stalls
// (writes of StallMin or longer), to within 9 %. A write under way when
// the process was frozen counts the freeze.
type Stalls struct {
	Writes uint64        // page writes timed
	Count  uint64        // of them, stalls
	P50    time.Duration // median stall
	P99    time.Duration
	Max    time.Duration
}

// String formats s as its wire line (without the newline).
func (s Stalls) String() string {
	return fmt.Sprintf("writes=%d stalls=%d p50_us=%d p99_us=%d max_us=%d",
		s.Writes, s.Count, s.P50.Microseconds(), s.P99.Microseconds(), s.Max.Microseconds())
}

// ParseStalls parses a line produced by Stalls.String.
func ParseStalls(line string) (Stalls, error) {
	var s Stalls
	var p50, p99, longest uint64
	fields := map[string]*uint64{"writes": &s.Writes, "stalls": &s.Count, "p50_us": &p50, "p99_us": &p99, "max_us": &longest}
	parts := strings.Fields(line)
	if len(parts) != len(fields) {
		return Stalls{}, fmt.Errorf("workload: malformed stalls line %q", line)
	}
	for _, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		dst := fields[k]
		n, err := strconv.ParseUint(v, 10, 63)
		if !ok || dst == nil || err != nil {
			return Stalls{}, fmt.Errorf("workload: malformed stalls line %q", line)
		}
		*dst = n
	}
	s.P50, s.P99, s.Max = time.Duration(p50)*time.Microsecond, time.Duration(p99)*time.Microsecond, time.Duration(longest)*time.Microsecond
	return s, nil
}

// stallBuckets per doubling of the stall: a bucket spans 9 %.
const stallBuckets = 8

// stallHist counts timed writes and the stalls among them in buckets of
// exponentially growing width.
type stallHist struct {
	mu      sync.Mutex
	writes  uint64
	max     time.Duration
	buckets []uint64 // index: bucket(d)
}

func bucket(d time.Duration) int {
	return int(math.Log2(float64(d)/float64(StallMin)) * stallBuckets)
}

// upper is the longest stall bucket i holds.
func upper(i int) time.Duration {
	return time.Duration(float64(StallMin) * math.Exp2(float64(i+1)/stallBuckets))
}

func (h *stallHist) add(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.writes++
	if d < StallMin {
		return
	}
	i := bucket(d)
	if i >= len(h.buckets) {
		h.buckets = append(h.buckets, make([]uint64, i+1-len(h.buckets))...)
	}
	h.buckets[i]++
	h.max = max(h.max, d)
}

// take returns the figures so far and starts again.
func (h *stallHist) take() Stalls {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Stalls{Writes: h.writes, Max: h.max}
	for _, n := range h.buckets {
		s.Count += n
	}
	s.P50, s.P99 = h.percentile(s.Count, 0.50), h.percentile(s.Count, 0.99)
	h.writes, h.max, h.buckets = 0, 0, nil
	return s
}

func (h *stallHist) percentile(count uint64, q float64) time.Duration {
	if count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(count)))
	var seen uint64
	for i, n := range h.buckets {
		if seen += n; seen >= rank {
			return min(upper(i), h.max)
		}
	}
	return h.max
}
