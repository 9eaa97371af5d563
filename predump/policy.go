// Package predump runs pre-copy: rounds of CRIU pre-dumps taken while the
// container keeps running, each round's images shipped to the destination
// as a compressed directory stream, so that the final dump carries only
// what changed since the last round. This file is the convergence policy:
// pure decisions over the figures the rounds measured.
package predump

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Policy is a convergence rule: when pre-dump rounds stop
// (migrate-src --precopy-policy).
type Policy string

// The policies.
const (
	// Adaptive stops when the predicted freeze fits the limit, when a round
	// no longer shrinks the dirty set, or at the round limit.
	Adaptive Policy = "adaptive"
	// PHaul is CRIU p.haul's rule: stop when a round wrote at most 64
	// pages, grew by more than 10 %, or after 9 rounds.
	PHaul Policy = "phaul"
	// LXD is LXD's rule: stop when at least 70 % of the pages were
	// unchanged since the previous round, or after 10 rounds.
	LXD Policy = "lxd"
)

// Policies lists the policies.
var Policies = []Policy{Adaptive, PHaul, LXD}

// ParsePolicy accepts a policy's name.
func ParsePolicy(name string) (Policy, error) {
	if p := Policy(name); slices.Contains(Policies, p) {
		return p, nil
	}
	names := make([]string, len(Policies))
	for i, p := range Policies {
		names[i] = string(p)
	}
	return "", fmt.Errorf("unknown pre-copy policy %q (%s)", name, strings.Join(names, ", "))
}

func (p Policy) String() string { return string(p) }

// Constants of the peers' rules, as they document them.
const (
	phaulMinPages   = 64
	phaulMaxGrowPct = 10
	phaulMaxRounds  = 9
	lxdGoalPct      = 70
	lxdMaxRounds    = 10
)

// shrinkPct is the adaptive rule's least useful progress: a round whose
// dirty set is not at least this much smaller than the previous one's
// means the workload dirties memory about as fast as it can be shipped.
const shrinkPct = 20

// Round is what one pre-copy round measured.
type Round struct {
	// PagesWritten is how many pages CRIU wrote: every resident page in
	// the first round, those dirtied since the previous round afterwards.
	PagesWritten uint64 `json:"pages_written"`
	// PagesSkipped is how many pages were unchanged since the previous
	// round (CRIU's pages_skipped_parent).
	PagesSkipped uint64 `json:"pages_skipped"`
	// Bytes is the raw size of the round's images as shipped.
	Bytes int64 `json:"bytes"`
	// WireBytes is what the round took on the wire after compression.
	WireBytes int64 `json:"wire_bytes"`
	// Frozen is how long CRIU kept the tree frozen to collect the pages.
	Frozen time.Duration `json:"frozen_ns"`
	// Dump is the whole pre-dump, frozen part included.
	Dump time.Duration `json:"dump_ns"`
	// Ship is how long the images took to reach the destination.
	Ship time.Duration `json:"ship_ns"`
	// Interval is the time from the previous round's freeze to this one's:
	// the time over which this round's dirty pages accumulated. Zero for
	// the first round.
	Interval time.Duration `json:"interval_ns"`
}

// Limits bound the rounds.
type Limits struct {
	// MaxRounds caps the number of rounds under every policy.
	MaxRounds int `json:"max_rounds"`
	// MaxFreeze is the adaptive policy's target for the final freeze.
	MaxFreeze time.Duration `json:"max_freeze_ns"`
	// RestoreFloor is the fixed part of a restore on the destination,
	// added to the predicted freeze.
	RestoreFloor time.Duration `json:"restore_floor_ns"`
	// PageSize is the size of a memory page in bytes.
	PageSize int `json:"page_size"`
}

// DefaultLimits are migrate-src's defaults.
func DefaultLimits() Limits {
	return Limits{MaxRounds: 8, MaxFreeze: 500 * time.Millisecond, RestoreFloor: 300 * time.Millisecond, PageSize: 4096}
}

// Validate reports limits that cannot work.
func (l Limits) Validate() error {
	switch {
	case l.MaxRounds < 1:
		return fmt.Errorf("predump: at least one round (max rounds %d)", l.MaxRounds)
	case l.MaxFreeze <= 0:
		return fmt.Errorf("predump: the freeze target must be positive")
	case l.RestoreFloor < 0:
		return fmt.Errorf("predump: negative restore floor")
	case l.PageSize <= 0:
		return fmt.Errorf("predump: page size %d", l.PageSize)
	}
	return nil
}

// Decision says whether to stop the rounds and take the final dump.
type Decision struct {
	Stop   bool   `json:"stop"`
	Reason string `json:"reason"`
	// PredictedFreeze is the adaptive policy's estimate of the final
	// freeze if it were taken now (zero when it cannot tell yet).
	PredictedFreeze time.Duration `json:"predicted_freeze_ns,omitempty"`
}

// Decide applies the named policy to the rounds taken so far.
func Decide(policy Policy, l Limits, rounds []Round) (Decision, error) {
	if _, err := ParsePolicy(string(policy)); err != nil {
		return Decision{}, fmt.Errorf("predump: %w", err)
	}
	if len(rounds) == 0 {
		return Decision{Reason: "no round yet"}, nil
	}
	var d Decision
	switch policy {
	case Adaptive:
		d = adaptive(l, rounds)
	case PHaul:
		d = phaul(rounds)
	case LXD:
		d = lxd(rounds)
	}
	if !d.Stop && len(rounds) >= l.MaxRounds {
		d.Stop, d.Reason = true, fmt.Sprintf("reached the limit of %d rounds", l.MaxRounds)
	}
	return d, nil
}

// adaptive predicts the final freeze from the measured dirty rate and
// bandwidth: the pages dirtied since the last round's freeze, shipped at
// the measured rate, plus the last round's frozen time (the dump's fixed
// part) and the destination's restore floor.
func adaptive(l Limits, rounds []Round) Decision {
	n := len(rounds)
	last := rounds[n-1]
	if n == 1 {
		// The first round ships all memory: it says nothing about the
		// dirty rate yet.
		return Decision{Reason: "first round: the dirty rate is not known yet"}
	}
	bw := bandwidth(rounds)
	if bw <= 0 || last.Interval <= 0 {
		return Decision{Stop: true, Reason: "no usable bandwidth or interval measured"}
	}
	page := float64(l.PageSize)
	rate := float64(last.PagesWritten) / last.Interval.Seconds() // pages per second
	// Dirtied since the last freeze: while it was dumped and shipped.
	since := last.Dump + last.Ship
	next := rate * since.Seconds()
	predicted := seconds(next*page/bw) + last.Frozen + l.RestoreFloor
	d := Decision{PredictedFreeze: predicted}
	prev := rounds[n-2]
	switch {
	case predicted <= l.MaxFreeze:
		d.Stop, d.Reason = true, fmt.Sprintf("predicted freeze %s fits the target %s", round(predicted), l.MaxFreeze)
	case last.PagesWritten*100 > prev.PagesWritten*(100-shrinkPct):
		d.Stop, d.Reason = true, fmt.Sprintf("not converging: round %d wrote %d pages after %d (less than %d%% fewer); the dirty rate (%.0f pages/s) is close to what can be shipped",
			n, last.PagesWritten, prev.PagesWritten, shrinkPct, rate)
	default:
		d.Reason = fmt.Sprintf("predicted freeze %s exceeds the target %s", round(predicted), l.MaxFreeze)
	}
	return d
}

// bandwidth is the shipping rate in bytes per second over all rounds:
// the large first round dominates, small later rounds do not skew it.
func bandwidth(rounds []Round) float64 {
	var bytes int64
	var t time.Duration
	for _, r := range rounds {
		bytes += r.Bytes
		t += r.Ship
	}
	if t <= 0 {
		return 0
	}
	return float64(bytes) / t.Seconds()
}

func phaul(rounds []Round) Decision {
	n := len(rounds)
	last := rounds[n-1]
	if last.PagesWritten <= phaulMinPages {
		return Decision{Stop: true, Reason: fmt.Sprintf("p.haul: round wrote %d pages (<= %d)", last.PagesWritten, phaulMinPages)}
	}
	if n >= 2 {
		prev := rounds[n-2].PagesWritten
		if prev > 0 && last.PagesWritten > prev && (last.PagesWritten-prev)*100 > prev*phaulMaxGrowPct {
			return Decision{Stop: true, Reason: fmt.Sprintf("p.haul: round grew from %d to %d pages (> %d%%)", prev, last.PagesWritten, phaulMaxGrowPct)}
		}
	}
	if n >= phaulMaxRounds {
		return Decision{Stop: true, Reason: fmt.Sprintf("p.haul: %d rounds", phaulMaxRounds)}
	}
	return Decision{Reason: "p.haul: proceed"}
}

func lxd(rounds []Round) Decision {
	n := len(rounds)
	last := rounds[n-1]
	if total := last.PagesWritten + last.PagesSkipped; total > 0 && last.PagesSkipped*100 >= total*lxdGoalPct {
		return Decision{Stop: true, Reason: fmt.Sprintf("lxd: %d%% of pages unchanged (>= %d%%)", last.PagesSkipped*100/total, lxdGoalPct)}
	}
	if n >= lxdMaxRounds {
		return Decision{Stop: true, Reason: fmt.Sprintf("lxd: %d rounds", lxdMaxRounds)}
	}
	return Decision{Reason: "lxd: proceed"}
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
