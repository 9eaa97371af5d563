//go:build linux

package migrate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"

	"github.com/dockmove/dockmove/internal/docker"
)

// DrainOptions says what a drain moves, where, and how many at once.
type DrainOptions struct {
	// Labels choose the containers: those carrying all of them (KEY or
	// KEY=VALUE). Default: every running container.
	Labels []string
	// Names choose among those the containers with one of these names,
	// each a name or a pattern (path.Match: web-*). A plain name that no
	// running container has is reported refused. Default: all.
	Names []string
	// To are the destinations (host:port). Default: SourceConfig.To. With
	// several, each container goes to the one that takes it with the most
	// memory to spare (then disk), as each reports in a check.
	To []string
	// Parallel is how many containers move at once. Default 1: their
	// freezes never overlap.
	Parallel int
}

// Outcomes of a drain's containers.
const (
	DrainMoved     = "moved"
	DrainWouldMove = "would-move" // a check
	DrainRefused   = "refused"    // nothing was frozen or shipped
	DrainFailed    = "failed"     // it began and was rolled back
)

// DrainResult is what became of one container of a drain.
type DrainResult struct {
	Container   string  `json:"container"`
	Outcome     string  `json:"outcome"`
	Destination string  `json:"destination,omitempty"` // where it moved, or would, or failed to
	Report      *Report `json:"report,omitempty"`
	Error       string  `json:"error,omitempty"` // empty: moved (or, for a check, would move)
	// State is the container's state on this host after a refusal or a
	// failure (Docker's word: "running" keeps the promise).
	State string `json:"state_here,omitempty"`
}

// ErrDrainIncomplete reports a drain that left containers on this host.
var ErrDrainIncomplete = errors.New("the host is not drained")

// Drain moves every running container of this host (those carrying all of
// opts.Labels, if any) to opts.To, opts.Parallel at a time: each keeps the
// promise of one migration (a container that fails to move runs on here).
// It goes on past a container that cannot move and reports each; with
// cfg.DryRun it only checks them all. onEach, if set, sees each result as
// it comes (from one goroutine at a time).
func Drain(ctx context.Context, cfg SourceConfig, opts DrainOptions, onEach func(DrainResult)) ([]DrainResult, error) {
	if len(opts.To) == 0 {
		opts.To = []string{cfg.To}
	}
	opts.Parallel = max(opts.Parallel, 1)
	dk, err := docker.New(cfg.Docker)
	if err != nil {
		return nil, err
	}
	defer dk.Close()
	running, err := dk.RunningContainers(ctx, opts.Labels)
	if err != nil {
		return nil, err
	}
	names, missing, err := pickNames(running, opts.Names)
	if err != nil {
		return nil, err
	}
	d := &drain{cfg: cfg, opts: opts, dk: dk, onEach: onEach, inFlight: map[string]int64{}}
	for _, name := range missing {
		why := "no running container of that name here"
		if len(opts.Labels) > 0 {
			why = "no running container of that name here with the labels " + strings.Join(opts.Labels, ", ")
		}
		d.done(d.outcome(ctx, DrainResult{Container: name}, errors.New(why)))
	}
	total := len(names) + len(missing)
	work := make(chan string)
	var wg sync.WaitGroup
	for range min(opts.Parallel, len(names)) {
		wg.Go(func() {
			for name := range work {
				d.done(d.move(ctx, name))
			}
		})
	}
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		select {
		case work <- name:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	out, stayed := d.results, 0
	for _, r := range out {
		if r.Outcome == DrainRefused || r.Outcome == DrainFailed {
			stayed++
		}
	}
	switch {
	case ctx.Err() != nil:
		return out, fmt.Errorf("%w: interrupted after %d of %d containers: %v", ErrDrainIncomplete, len(out), total, context.Cause(ctx))
	case stayed > 0:
		return out, fmt.Errorf("%w: %d of %d containers stay", ErrDrainIncomplete, stayed, total)
	}
	return out, nil
}

// drain is one drain in progress.
type drain struct {
	cfg    SourceConfig
	opts   DrainOptions
	dk     *docker.Client
	onEach func(DrainResult)

	mu       sync.Mutex
	results  []DrainResult
	inFlight map[string]int64 // memory moving to each destination now
}

// done records r and shows it.
func (d *drain) done(r DrainResult) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.results = append(d.results, r)
	if d.onEach != nil {
		d.onEach(r)
	}
}

// move moves (or checks) one container.
func (d *drain) move(ctx context.Context, name string) DrainResult {
	c := d.cfg
	c.Container, c.Pid = name, 0
	res := DrainResult{Container: name}
	var memory int64
	if len(d.opts.To) == 1 {
		c.To = d.opts.To[0]
	} else {
		to, mem, check, err := d.choose(ctx, c)
		if err != nil || c.DryRun {
			res.Destination, res.Report = to, check
			return d.outcome(ctx, res, err)
		}
		c.To, memory = to, mem
	}
	res.Destination = c.To
	d.hold(c.To, memory)
	r, err := Migrate(ctx, c)
	d.hold(c.To, -memory)
	res.Report = r
	return d.outcome(ctx, res, err)
}

// outcome completes res from how its migration (or check) ended.
func (d *drain) outcome(ctx context.Context, res DrainResult, err error) DrainResult {
	switch {
	case err == nil && d.cfg.DryRun:
		res.Outcome = DrainWouldMove
		return res
	case err == nil:
		res.Outcome = DrainMoved
		return res
	case res.Report != nil && res.Report.started:
		res.Outcome = DrainFailed
	default:
		res.Outcome = DrainRefused
	}
	res.Error = err.Error()
	if info, ierr := d.dk.Inspect(context.WithoutCancel(ctx), res.Container); ierr == nil && info.State != nil {
		res.State = info.State.Status
	} else {
		res.State = "unknown"
	}
	return res
}

// hold counts memory as moving to destination (negative: no longer).
func (d *drain) hold(destination string, memory int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inFlight[destination] += memory
}

// offer is a destination's answer to a drain's check of one container.
type offer struct {
	to     string
	report *Report // the check's
}

// choose checks container c against every destination and returns the
// one that takes it with the most memory to spare, its memory estimate,
// and that destination's check report. None taking it: every
// destination's reason.
func (d *drain) choose(ctx context.Context, c SourceConfig) (string, int64, *Report, error) {
	var offers []offer
	var refusals []string
	for _, to := range d.opts.To {
		probe := c
		probe.To, probe.DryRun, probe.OnStage = to, true, nil
		probe.Transfer.Progress = nil
		r, err := Migrate(ctx, probe)
		if err != nil {
			refusals = append(refusals, to+": "+err.Error())
			continue
		}
		offers = append(offers, offer{to, r})
	}
	if len(offers) == 0 {
		return "", 0, nil, fmt.Errorf("no destination takes it: %s", strings.Join(refusals, "; "))
	}
	d.mu.Lock()
	best := bestOffer(offers, d.inFlight)
	d.mu.Unlock()
	return best.to, best.report.Check.Sizes.Memory, best.report, nil
}

// bestOffer is the destination with the most memory to spare once the
// container and what moves there now (inFlight) have arrived, then the
// most free disk; on a tie, the first named.
func bestOffer(offers []offer, inFlight map[string]int64) offer {
	spare := func(o offer) int64 { return o.report.Check.MemAvailable - inFlight[o.to] - o.report.Check.Sizes.Memory }
	return slices.MaxFunc(offers, func(a, b offer) int {
		return cmp.Or(cmp.Compare(spare(a), spare(b)), cmp.Compare(a.report.Check.DiskFree, b.report.Check.DiskFree))
	})
}

// pickNames returns the running containers that one of names (names or
// path.Match patterns) chooses, all of them without names, and the plain
// names that none of them has.
func pickNames(running, names []string) (chosen, missing []string, err error) {
	if len(names) == 0 {
		return running, nil, nil
	}
	for _, n := range names {
		if _, err := path.Match(n, ""); err != nil {
			return nil, nil, fmt.Errorf("name pattern %q: %w", n, err)
		}
	}
	for _, r := range running {
		if slices.ContainsFunc(names, func(n string) bool { ok, _ := path.Match(n, r); return ok }) {
			chosen = append(chosen, r)
		}
	}
	for _, n := range names {
		if !strings.ContainsAny(n, `*?[\`) && !slices.Contains(running, n) && !slices.Contains(missing, n) {
			missing = append(missing, n)
		}
	}
	return chosen, missing, nil
}
