//go:build linux

package bench

import (
	"fmt"
	"image/color"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// breakdownGroups fold the freeze's steps into the parts a reader tells
// apart: CRIU's dump and what ships with it, the destination's own work,
// Docker and containerd around the restore runtime, runc and CRIU's
// restore, and the link. A step no group names counts as "other".
var breakdownGroups = []struct {
	name  string
	steps []string
	color color.RGBA
}{
	{"dump (CRIU)", []string{"source/dump"}, color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}},
	{"ship", []string{"source/ship"}, color.RGBA{R: 0xae, G: 0xc7, B: 0xe8, A: 0xff}},
	{"destination", []string{"destination/await-request", "destination/prepare", "destination/runtime-prepare", "destination/verify", "destination/announce", "destination/record"}, color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}},
	{"Docker, containerd", []string{"destination/docker-to-runtime", "destination/docker-after-runtime"}, color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}},
	{"restore (runc, CRIU)", []string{"destination/runc-restore", "destination/criu-restore"}, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}},
	{"link", []string{"link"}, color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}},
	{"other", nil, color.RGBA{R: 0xbc, G: 0xbd, B: 0x22, A: 0xff}},
}

// breakdownBars returns, for each case of strategy at the dirty rate
// with freeze steps (Docker's freeze has none), its label and the median
// milliseconds of each of breakdownGroups.
func breakdownBars(sums []Summary, strategy string, dirty int) (labels []string, parts [][]float64) {
	parts = make([][]float64, len(breakdownGroups))
	for _, s := range sums {
		if len(s.FreezeSteps) == 0 || s.Strategy != strategy || s.DirtyRate != dirty {
			continue
		}
		label := fmt.Sprintf("%d MiB", s.MemMiB)
		if s.Workload != "synthetic" {
			label = s.Workload + " " + label
		}
		labels = append(labels, label)
		for g := range parts {
			parts[g] = append(parts[g], 0)
		}
		for _, st := range s.FreezeSteps {
			g := len(breakdownGroups) - 1
			for i, grp := range breakdownGroups {
				for _, name := range grp.steps {
					if name == st.Step {
						g = i
					}
				}
			}
			parts[g][len(labels)-1] += st.Ms
		}
	}
	return labels, parts
}

// plotBreakdown draws one stacked bar per case of strategy: where its
// freeze went.
func (r *Report) plotBreakdown(path, strategy string, dirty int) error {
	labels, parts := breakdownBars(r.Summary, strategy, dirty)
	if len(labels) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Where the freeze went: %s (median ms), %d dirty pages/s", strategy, dirty)
	p.Y.Label.Text = "freeze (ms)"
	p.Legend.Top, p.Legend.Left = true, true
	width := vg.Points(40)
	var below *plotter.BarChart
	for g, grp := range breakdownGroups {
		bars, err := plotter.NewBarChart(plotter.Values(parts[g]), width)
		if err != nil {
			return err
		}
		bars.Color = grp.color
		bars.LineStyle.Width = 0
		if below != nil {
			bars.StackOn(below)
		}
		below = bars
		p.Add(bars)
		p.Legend.Add(grp.name, bars)
	}
	p.NominalX(labels...)
	// Headroom above the tallest bar for the legend.
	tallest := 0.0
	for i := range labels {
		sum := 0.0
		for g := range parts {
			sum += parts[g][i]
		}
		tallest = max(tallest, sum)
	}
	p.Y.Min, p.Y.Max = 0, 1.6*tallest
	return p.Save(vg.Length(4+float64(len(labels))*0.9)*vg.Inch, 4.5*vg.Inch, path)
}

// breakdownFile names the breakdown plot of a strategy and dirty rate.
func breakdownFile(dir, strategy string, dirty int) string {
	return filepath.Join(dir, fmt.Sprintf("freeze-breakdown-%s-dirty%d.png", containerSafe(strategy), dirty))
}
