package predump

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dockmove/dockmove/internal/criu"
)

// Config drives the rounds of one migration.
type Config struct {
	// CRIU is the criu binary ("" finds it in PATH).
	CRIU string
	// Dir holds one directory per round, RoundDir(Dir, i). The final dump
	// goes next to them, with Parent(i) of the last round as its parent.
	Dir string
	// Spec describes the tree to pre-dump (the final dump's spec).
	Spec criu.DumpSpec
	// Policy and Limits decide when to stop (Decide).
	Policy Policy
	Limits Limits
	// Ship sends round i's directory to the destination and returns the
	// raw and on-the-wire bytes. Required.
	Ship func(ctx context.Context, i int, dir string) (bytes, wire int64, err error)
	// OnRound, when set, is told about each round and the decision after it.
	OnRound func(i int, r Round, d Decision)
	// Before, when set, is asked before each round's pre-dump: an error
	// ends the rounds (a task stopped since the last round would keep
	// CRIU waiting with the tree frozen).
	Before func(i int) error
	// Watch, when set, guards each pre-dump: it is called as CRIU is about
	// to pre-dump into dir and returns a function to call once CRIU has
	// returned, which reports whether the pre-dump outlived its deadline
	// (and was stopped, the tree thawed).
	Watch func(dir string) (expired func() bool)
}

// ErrDeadline reports a pre-dump stopped at its deadline.
var ErrDeadline = errors.New("CRIU's pre-dump did not finish in time: it was stopped and the tree thawed")

// Result is what the rounds did.
type Result struct {
	Rounds    []Round    `json:"rounds"`
	Decisions []Decision `json:"decisions"`
}

// Parent is the relative parent path a dump next to the rounds gives CRIU
// to build on round i.
func Parent(i int) string { return filepath.Join("..", RoundName(i)) }

// RoundName is round i's directory name.
func RoundName(i int) string { return "round-" + strconv.Itoa(i) }

// RoundDir is round i's directory under dir.
func RoundDir(dir string, i int) string { return filepath.Join(dir, RoundName(i)) }

// Run takes pre-dump rounds while the tree keeps running, ships each, and
// releases its page data locally once shipped (the next dump needs only
// the pagemaps), until the policy says stop. The tree is never left
// frozen: a failed round leaves it running, and the error says why.
func Run(ctx context.Context, cfg Config) (Result, error) {
	var res Result
	if cfg.Ship == nil {
		return res, errors.New("predump: no way to ship rounds")
	}
	if err := cfg.Limits.Validate(); err != nil {
		return res, err
	}
	if _, err := Decide(cfg.Policy, cfg.Limits, nil); err != nil {
		return res, err
	}
	var lastFreeze time.Time
	for i := 1; ; i++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		dir := RoundDir(cfg.Dir, i)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return res, err
		}
		spec := cfg.Spec
		spec.Parent = ""
		if i > 1 {
			spec.Parent = Parent(i - 1)
		}
		if cfg.Before != nil {
			if err := cfg.Before(i); err != nil {
				return res, fmt.Errorf("pre-copy round %d: %w", i, err)
			}
		}
		expired := func() bool { return false }
		if cfg.Watch != nil {
			expired = cfg.Watch(dir)
		}
		start := time.Now()
		st, err := criu.PreDump(cfg.CRIU, dir, spec)
		if expired() {
			return res, fmt.Errorf("pre-copy round %d: %w", i, ErrDeadline)
		}
		if err != nil {
			return res, fmt.Errorf("pre-copy round %d: %w", i, err)
		}
		// The tree froze at about start + freezing time.
		freeze := start.Add(st.FreezingTime)
		r := Round{PagesWritten: st.PagesWritten, PagesSkipped: st.PagesSkipped, Frozen: st.FrozenTime, Dump: time.Since(start)}
		if !lastFreeze.IsZero() {
			r.Interval = freeze.Sub(lastFreeze)
		}
		lastFreeze = freeze
		shipStart := time.Now()
		if r.Bytes, r.WireBytes, err = cfg.Ship(ctx, i, dir); err != nil {
			return res, fmt.Errorf("pre-copy round %d: %w", i, err)
		}
		r.Ship = time.Since(shipStart)
		if err := ReleasePages(dir); err != nil {
			return res, fmt.Errorf("pre-copy round %d: %w", i, err)
		}
		res.Rounds = append(res.Rounds, r)
		d, err := Decide(cfg.Policy, cfg.Limits, res.Rounds)
		if err != nil {
			return res, err
		}
		res.Decisions = append(res.Decisions, d)
		if cfg.OnRound != nil {
			cfg.OnRound(i, r, d)
		}
		if d.Stop {
			return res, nil
		}
	}
}

// ReleasePages empties the page data of a shipped round: later dumps read
// only its pagemaps (to skip unchanged pages), never its pages, and the
// destination has its own copy. The files stay, empty, so the image
// directory keeps its shape.
func ReleasePages(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), "pages-") && strings.HasSuffix(e.Name(), ".img") {
			if err := os.Truncate(filepath.Join(dir, e.Name()), 0); err != nil {
				return err
			}
		}
	}
	return nil
}
