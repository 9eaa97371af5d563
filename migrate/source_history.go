//go:build linux

package migrate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/internal/cli"
	"github.com/dockmove/dockmove/protocol"
)

// What this host's migrations froze is kept, so that a check can predict
// the freeze of the next one from measurements on these hosts rather than
// from figures measured elsewhere.
const (
	historyFile = "freeze-history.jsonl"
	historyKeep = 200 // records kept; the file is cut back to these at twice as many
	historyFit  = 20  // the most recent records of a strategy a prediction uses
)

// historyRecord is one completed migration from this host.
type historyRecord struct {
	Time        time.Time         `json:"time"`
	Destination string            `json:"destination"`
	Strategy    protocol.Strategy `json:"strategy"`
	// Memory is the source's estimate at the preflight, the figure a
	// check sees for the container it predicts.
	Memory int64         `json:"memory"`
	Freeze time.Duration `json:"freeze_ns"`
	// Moving is the part of the freeze that grows with the memory dumped:
	// the dump and the ship.
	Moving time.Duration `json:"moving_ns"`
}

// newHistoryRecord describes a completed migration.
func newHistoryRecord(r *Report, memory int64) historyRecord {
	rec := historyRecord{Time: time.Now().UTC(), Destination: r.Destination, Strategy: r.Strategy, Memory: memory, Freeze: r.FreezeTime}
	for _, st := range r.Freeze {
		if st.Step == "dump" || st.Step == "ship" {
			rec.Moving += st.Time
		}
	}
	return rec
}

// recordHistory appends rec to workDir's history. Concurrent migrations
// (a drain) take turns through a lock on the file.
func recordHistory(workDir string, rec historyRecord) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	path := filepath.Join(workDir, historyFile)
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
			f.Close()
			return err
		}
		// A writer that cut the file back replaced it meanwhile: append to
		// the new one.
		var held, named unix.Stat_t
		if unix.Fstat(int(f.Fd()), &held) != nil || unix.Lstat(path, &named) != nil || held.Ino != named.Ino {
			f.Close()
			continue
		}
		defer f.Close()
		if _, err := f.Write(append(line, '\n')); err != nil {
			return err
		}
		recs := readHistoryFrom(f)
		if len(recs) <= 2*historyKeep {
			return nil
		}
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		for _, r := range recs[len(recs)-historyKeep:] {
			enc.Encode(r)
		}
		return writeFileAtomic(path, b.Bytes())
	}
}

// readHistory returns workDir's history, oldest first; a missing or
// damaged file gives what can be read of it.
func readHistory(workDir string) []historyRecord {
	f, err := os.OpenFile(filepath.Join(workDir, historyFile), os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	return readHistoryFrom(f)
}

// readHistoryFrom reads the history in f from its start.
func readHistoryFrom(f *os.File) []historyRecord {
	if _, err := f.Seek(0, 0); err != nil {
		return nil
	}
	var recs []historyRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r historyRecord
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Freeze > 0 && r.Memory >= 0 {
			recs = append(recs, r)
		}
	}
	return recs
}

// FreezePrediction is what a check expects one strategy's freeze to be.
type FreezePrediction struct {
	Strategy protocol.Strategy `json:"strategy"`
	// Freeze is the expected freeze; 0: no prediction (see Basis) or the
	// strategy is unavailable.
	Freeze time.Duration `json:"freeze_ns,omitempty"`
	// Basis says what the prediction rests on, or why there is none.
	Basis string `json:"basis"`
	// Unavailable says why the hosts cannot run the strategy.
	Unavailable string `json:"unavailable,omitempty"`
}

// predictFreeze expects the freeze of a migration by strategy to
// destination of a container with memory bytes, from the history of this
// host's migrations: a part that does not depend on the memory and one
// that grows with it (fitFreeze). Recent
// migrations to the same destination count when there are enough of them,
// else recent ones to any.
func predictFreeze(hist []historyRecord, strategy protocol.Strategy, destination string, memory int64) FreezePrediction {
	p := FreezePrediction{Strategy: strategy}
	var all, same []historyRecord
	for _, r := range slices.Backward(hist) {
		if r.Strategy != strategy {
			continue
		}
		if len(all) < historyFit {
			all = append(all, r)
		}
		if r.Destination == destination && len(same) < historyFit {
			same = append(same, r)
		}
	}
	recs, where := all, "to any destination"
	if len(same) >= 3 {
		recs, where = same, "to "+destination
	}
	if len(recs) == 0 {
		p.Basis = fmt.Sprintf("no %s migration from this host measured yet", strategy)
		return p
	}
	lo, hi := recs[0].Memory, recs[0].Memory
	for _, r := range recs {
		lo, hi = min(lo, r.Memory), max(hi, r.Memory)
	}
	rate, fixed := fitFreeze(recs)
	p.Freeze = time.Duration(fixed + rate*float64(memory))
	p.Basis = fmt.Sprintf("from the last %d %s migrations from this host %s (%s to %s of memory)", len(recs), strategy, where, cli.Size(lo), cli.Size(hi))
	return p
}

// fitFreeze fits freeze = fixed + rate x memory (ns, ns per byte) to
// recs, robustly (Theil-Sen): the rate is the median of the slopes between
// every two records of different sizes, the fixed part the median of what
// each freeze leaves once its memory is paid for. A history of one size
// has no slope: its rate is then the median of the memory-moving steps'
// (dump and ship) per byte. A few freak freezes (a loaded host, a fault
// injected) move neither median.
func fitFreeze(recs []historyRecord) (rate, fixed float64) {
	var slopes []float64
	for i, a := range recs {
		for _, b := range recs[i+1:] {
			if a.Memory != b.Memory {
				slopes = append(slopes, float64(b.Freeze-a.Freeze)/float64(b.Memory-a.Memory))
			}
		}
	}
	if len(slopes) > 0 {
		rate = median(slopes)
	} else {
		var rates []float64
		for _, r := range recs {
			if r.Memory > 0 {
				rates = append(rates, float64(r.Moving)/float64(r.Memory))
			}
		}
		rate = median(rates)
	}
	rate = max(rate, 0)
	rest := make([]float64, 0, len(recs))
	for _, r := range recs {
		rest = append(rest, max(0, float64(r.Freeze)-rate*float64(r.Memory)))
	}
	return rate, median(rest)
}

// median returns the middle of xs (0 for none); xs is reordered.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// predictions expects the freeze of each strategy for what this source
// moves, or says why the hosts cannot run it.
func (s *source) predictions() []FreezePrediction {
	hist := readHistory(s.cfg.WorkDir)
	var out []FreezePrediction
	for _, st := range protocol.Strategies {
		if _, _, err := chooseStrategy(st, s.tc.Hello.CRIU, s.sess.Peer().CRIU); err != nil {
			out = append(out, FreezePrediction{Strategy: st, Unavailable: strings.TrimPrefix(err.Error(), fmt.Sprintf("%v: %s: ", ErrStrategyUnavailable, st))})
			continue
		}
		out = append(out, predictFreeze(hist, st, s.cfg.To, s.memory))
	}
	return out
}
