package migrate

import (
	"time"

	"github.com/dockmove/dockmove/protocol"
)

// Where a container's freeze goes. The source measures the window, from
// CRIU's announcement that it freezes the tree to the destination's report
// that the copy runs, in three parts: the dump, the shipping of what it
// wrote, and the wait for the destination. The destination times its own
// steps (protocol.Restored.Steps); what they leave of the wait is the
// link: the last bytes in flight, the two messages and the destination's
// last writes.

// FreezeStep is one part of the freeze.
type FreezeStep struct {
	Step string        `json:"step"`
	Host string        `json:"host"` // "source", "destination" or "link"
	Time time.Duration `json:"ns"`
}

// freezeMarks are the source's instants of the freeze window.
type freezeMarks struct {
	frozen  time.Time // CRIU announced the freeze
	dumped  time.Time // CRIU finished writing the images
	shipped time.Time // everything sent, the restore asked for
	running time.Time // the destination reported its copy running
}

// breakdown tiles the freeze window with the source's parts, the
// destination's steps and the link's remainder; the parts add up to
// running - frozen. Nil until the window closed.
func (m freezeMarks) breakdown(dst []protocol.FreezeStep) []FreezeStep {
	if m.frozen.IsZero() || m.running.IsZero() {
		return nil
	}
	dumped, shipped := m.dumped, m.shipped
	if dumped.IsZero() || dumped.Before(m.frozen) {
		dumped = m.frozen
	}
	if shipped.IsZero() || shipped.Before(dumped) {
		shipped = dumped
	}
	steps := []FreezeStep{
		{Step: "dump", Host: "source", Time: dumped.Sub(m.frozen)},
		{Step: "ship", Host: "source", Time: shipped.Sub(dumped)},
	}
	wait := m.running.Sub(shipped)
	var spent time.Duration
	for _, s := range dst {
		d := time.Duration(s.Micros) * time.Microsecond
		// A destination's figures cannot stretch the window the source
		// measured.
		d = min(d, wait-spent)
		spent += d
		steps = append(steps, FreezeStep{Step: s.Name, Host: "destination", Time: d})
	}
	return append(steps, FreezeStep{Step: "link", Host: "link", Time: wait - spent})
}

// stepClock times the destination's steps, one after the other.
type stepClock struct {
	last  time.Time
	steps []protocol.FreezeStep
}

func startSteps() *stepClock { return &stepClock{last: time.Now()} }

// mark ends step name now.
func (c *stepClock) mark(name string) { c.markAt(name, time.Now()) }

// markAt ends step name at t, an instant another process of this host
// recorded: kept between the previous step's end and now, so that a
// missing or odd time never makes the steps overlap.
func (c *stepClock) markAt(name string, t time.Time) {
	if now := time.Now(); t.After(now) {
		t = now
	}
	if t.Before(c.last) {
		t = c.last
	}
	if len(c.steps) < protocol.MaxFreezeSteps {
		c.steps = append(c.steps, protocol.FreezeStep{Name: name, Micros: t.Sub(c.last).Microseconds()})
	}
	c.last = t
}
