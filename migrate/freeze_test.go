package migrate

import (
	"testing"
	"time"

	"github.com/dockmove/dockmove/protocol"
)

func TestFreezeBreakdownAddsUpWithFakeTimes(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	m := freezeMarks{
		frozen:  t0,
		dumped:  t0.Add(200 * time.Millisecond),
		shipped: t0.Add(250 * time.Millisecond),
		running: t0.Add(900 * time.Millisecond),
	}
	dst := []protocol.FreezeStep{{Name: "prepare", Micros: 5000}, {Name: "runc-restore", Micros: 600000}}
	steps := m.breakdown(dst)
	want := []FreezeStep{
		{"dump", "source", 200 * time.Millisecond},
		{"ship", "source", 50 * time.Millisecond},
		{"prepare", "destination", 5 * time.Millisecond},
		{"runc-restore", "destination", 600 * time.Millisecond},
		{"link", "link", 45 * time.Millisecond},
	}
	if len(steps) != len(want) {
		t.Fatalf("steps %+v, want %+v", steps, want)
	}
	var sum time.Duration
	for i, st := range steps {
		if st != want[i] {
			t.Errorf("step %d: %+v, want %+v", i, st, want[i])
		}
		sum += st.Time
	}
	if sum != 900*time.Millisecond {
		t.Errorf("the steps add up to %v, the freeze was 900ms", sum)
	}

	// A destination claiming more than the wait it had cannot stretch the
	// window: its steps are cut to it, the link gets nothing.
	steps = m.breakdown([]protocol.FreezeStep{{Name: "runc-restore", Micros: 5e6}})
	if got := steps[2].Time; got != 650*time.Millisecond || steps[3].Time != 0 {
		t.Errorf("an inflated destination step: %+v", steps)
	}
	// Before the window closed there is nothing to say.
	if steps := (freezeMarks{frozen: t0}).breakdown(nil); steps != nil {
		t.Errorf("an open window: %+v", steps)
	}
}

func TestStepClockKeepsStepsInOrderWithFakeInstants(t *testing.T) {
	c := startSteps()
	start := c.last
	c.markAt("before-start", start.Add(-time.Second)) // an instant before the clock began: zero
	c.markAt("future", time.Now().Add(time.Hour))     // after now: cut to now
	c.markAt("missing", time.Time{})                  // not recorded: zero
	c.mark("last")
	if len(c.steps) != 4 {
		t.Fatalf("steps %+v", c.steps)
	}
	if c.steps[0].Micros != 0 || c.steps[2].Micros != 0 {
		t.Errorf("steps out of the window were not zero: %+v", c.steps)
	}
	var sum int64
	for _, st := range c.steps {
		if st.Micros < 0 {
			t.Errorf("negative step %+v", st)
		}
		sum += st.Micros
	}
	if elapsed := time.Since(start).Microseconds(); sum > elapsed {
		t.Errorf("steps add up to %d µs, more than the %d µs that passed", sum, elapsed)
	}
	for range 20 {
		c.mark("more")
	}
	if len(c.steps) != protocol.MaxFreezeSteps {
		t.Errorf("%d steps, limit %d", len(c.steps), protocol.MaxFreezeSteps)
	}
	r := protocol.Restored{Pid: 1, Steps: c.steps}
	if err := r.Validate(); err != nil {
		t.Errorf("the clock's steps do not validate: %v", err)
	}
}
