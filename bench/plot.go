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

// strategyColors keeps each strategy's colour the same in every plot.
var strategyColors = map[string]color.RGBA{
	StopAndCopy:      {R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	StopAndCopyLocal: {R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	Lazy:             {R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	DockerCheckpoint: {R: 0x44, G: 0x44, B: 0x44, A: 0xff},
	PodmanArchive:    {R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
}

// Plots draws freeze time against memory size, one line per strategy, for
// each dirty rate of the synthetic workload, on log scales, and where the
// freeze went, one stacked bar per case.
func (r *Report) Plots(dir string) error {
	for _, dirty := range r.Config.DirtyRates {
		for _, m := range []struct {
			file, what string
			value      func(Summary) float64
		}{
			{"freeze-agents", "measured by the agents", func(s Summary) float64 { return s.FreezeAgentMedMs }},
			{"freeze-app", "seen by the application's client", func(s Summary) float64 { return s.FreezeAppMedMs }},
		} {
			name := fmt.Sprintf("%s-dirty%d.png", m.file, dirty)
			title := fmt.Sprintf("Freeze time %s (median), %d dirty pages/s", m.what, dirty)
			if err := r.plotFreeze(filepath.Join(dir, name), title, dirty, m.value); err != nil {
				return err
			}
		}
		for _, strategy := range r.Config.Strategies {
			if err := r.plotBreakdown(breakdownFile(dir, strategy, dirty), strategy, dirty); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Report) plotFreeze(path, title string, dirty int, value func(Summary) float64) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "memory (MiB)"
	p.Y.Label.Text = "freeze (ms)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	drawn := 0
	for _, strategy := range r.Config.Strategies {
		var pts plotter.XYs
		for _, s := range r.Summary {
			if s.Workload == "synthetic" && s.Strategy == strategy && s.DirtyRate == dirty && value(s) > 0 {
				pts = append(pts, plotter.XY{X: float64(s.MemMiB), Y: value(s)})
			}
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		line.Color, points.Color = strategyColors[strategy], strategyColors[strategy]
		line.Width = vg.Points(2)
		p.Add(line, points)
		p.Legend.Add(strategy, line, points)
		drawn++
	}
	if drawn == 0 {
		return nil // nothing measured yet (a log scale needs values)
	}
	return p.Save(7*vg.Inch, 4.5*vg.Inch, path)
}
