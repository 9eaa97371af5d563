package predump

import (
	"strings"
	"testing"
	"time"
)

const mib = 1 << 20

// first is a 64 MiB first round shipped at 256 MiB/s.
var first = Round{PagesWritten: 16384, Bytes: 64 * mib, Dump: 300 * time.Millisecond, Frozen: 20 * time.Millisecond, Ship: 250 * time.Millisecond}

// next is a later round that wrote w pages and skipped the rest of 16384,
// 600 ms after the previous round's freeze, shipped at 256 MiB/s.
func next(w uint64) Round {
	bytes := int64(w) * 4096
	at := func(rate float64) time.Duration { return time.Duration(float64(bytes) / rate * float64(time.Second)) }
	return Round{PagesWritten: w, PagesSkipped: 16384 - w, Bytes: bytes, Interval: 600 * time.Millisecond,
		Dump: 10*time.Millisecond + at(250*mib), Frozen: 10 * time.Millisecond, Ship: at(256 * mib)}
}

func rounds(rs ...Round) []Round { return rs }

func TestDecide(t *testing.T) {
	lim := DefaultLimits()
	tight := lim
	tight.MaxFreeze = 100 * time.Millisecond
	one := lim
	one.MaxRounds = 1
	three := lim
	three.MaxRounds = 3
	many := lim
	many.MaxRounds = 100
	// Rounds that neither shrink, grow, nor skip much.
	nine := make([]Round, 9)
	for i := range nine {
		nine[i] = Round{PagesWritten: 1000, PagesSkipped: 1000}
	}
	ten := append(append([]Round(nil), nine...), nine[0])
	cases := []struct {
		name   string
		policy Policy
		lim    Limits
		rounds []Round
		stop   bool
		reason string // a substring of the reason
	}{
		{"adaptive: no round yet", Adaptive, lim, nil, false, "no round"},
		{"adaptive: first round says nothing about the dirty rate", Adaptive, lim, rounds(first), false, "first round"},
		{"adaptive: one round allowed", Adaptive, one, rounds(first), true, "limit of 1 rounds"},
		{"adaptive: an idle workload fits the target after round 2", Adaptive, lim, rounds(first, next(7)), true, "fits the target"},
		{"adaptive: a busy workload is not converging", Adaptive, tight, rounds(first, next(15000)), true, "not converging"},
		{"adaptive: shrinking by exactly 20% still converges", Adaptive, tight, rounds(first, next(10000), next(8000)), false, "exceeds the target"},
		{"adaptive: shrinking but above a tight target goes on", Adaptive, tight, rounds(first, next(4000)), false, "exceeds the target"},
		{"adaptive: the round cap stops it", Adaptive, func() Limits { l := tight; l.MaxRounds = 2; return l }(), rounds(first, next(4000)), true, "limit of 2 rounds"},
		{"adaptive: no interval measured", Adaptive, lim, rounds(first, Round{PagesWritten: 5, Bytes: 4096, Ship: time.Millisecond}), true, "no usable"},
		{"phaul: small dirty set", PHaul, lim, rounds(first, next(64)), true, "<= 64"},
		{"phaul: 65 pages go on", PHaul, lim, rounds(first, next(65)), false, "proceed"},
		{"phaul: growth over 10% stops", PHaul, lim, rounds(first, next(1000), next(1101)), true, "grew"},
		{"phaul: growth of exactly 10% goes on", PHaul, lim, rounds(first, next(1000), next(1100)), false, "proceed"},
		{"phaul: nine rounds", PHaul, many, nine, true, "9 rounds"},
		{"phaul: eight rounds go on", PHaul, many, nine[:8], false, "proceed"},
		{"phaul: our round cap applies too", PHaul, three, rounds(first, next(1000), next(900)), true, "limit of 3"},
		{"lxd: the first round skips nothing", LXD, lim, rounds(first), false, "proceed"},
		{"lxd: 70% skipped stops", LXD, lim, rounds(first, next(16384*30/100)), true, "unchanged"},
		{"lxd: 69% skipped goes on", LXD, lim, rounds(first, next(16384*31/100+1)), false, "proceed"},
		{"lxd: ten rounds", LXD, many, ten, true, "10 rounds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := Decide(c.policy, c.lim, c.rounds)
			if err != nil {
				t.Fatal(err)
			}
			if d.Stop != c.stop || !strings.Contains(d.Reason, c.reason) {
				t.Fatalf("got stop=%v %q, want stop=%v and %q", d.Stop, d.Reason, c.stop, c.reason)
			}
		})
	}
}

func TestAdaptivePrediction(t *testing.T) {
	// Round 2 wrote 4000 pages in 600 ms: 6667 pages/s. Since its freeze,
	// 72.5 ms dump + 61 ms ship passed: ~890 pages, 3.5 MiB, ~13.6 ms at
	// 256 MiB/s (the bandwidth over both rounds is also 256 MiB/s). Plus
	// 10 ms frozen and the 300 ms floor: ~324 ms.
	d, err := Decide(Adaptive, DefaultLimits(), rounds(first, next(4000)))
	if err != nil {
		t.Fatal(err)
	}
	if d.PredictedFreeze < 320*time.Millisecond || d.PredictedFreeze > 328*time.Millisecond {
		t.Fatalf("predicted freeze %s, want about 324ms", d.PredictedFreeze)
	}
	if !d.Stop {
		t.Fatalf("324ms fits 500ms, should stop: %+v", d)
	}
}

func TestDecideRefusesUnknownPolicy(t *testing.T) {
	// Refused before any round too: Run checks the policy that way.
	for _, rs := range [][]Round{nil, rounds(first)} {
		if _, err := Decide("greedy", DefaultLimits(), rs); err == nil || !strings.Contains(err.Error(), `unknown pre-copy policy "greedy" (adaptive, phaul, lxd)`) {
			t.Fatalf("%d rounds: err = %v", len(rs), err)
		}
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := DefaultLimits().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, l := range []Limits{{MaxRounds: 0, MaxFreeze: 1, PageSize: 4096}, {MaxRounds: 1, PageSize: 4096}, {MaxRounds: 1, MaxFreeze: 1, RestoreFloor: -1, PageSize: 4096}, {MaxRounds: 1, MaxFreeze: 1}} {
		if l.Validate() == nil {
			t.Errorf("%+v accepted", l)
		}
	}
}
