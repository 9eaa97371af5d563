// Package metricstest reads a metrics endpoint for tests: one scrape,
// parsed from Prometheus's text format, and the values of its series. It
// is apart from package metrics so that no shipped binary links testing.
package metricstest

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape is one scrape's metric families, by name.
type Scrape map[string]*dto.MetricFamily

// Get scrapes url with c (nil: http.DefaultClient) and fails t unless it
// answers 200 with metrics in the text format.
func Get(t testing.TB, c *http.Client, url string) Scrape {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: %s: %s", url, resp.Status, body)
	}
	s, err := Parse(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return s
}

// Parse reads metrics in the text format.
func Parse(r io.Reader) (Scrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse the text exposition: %w", err)
	}
	return fams, nil
}

// Value sums, over the series of family name whose labels include labels
// (name, value pairs), a counter's or a gauge's value or a histogram's
// count of samples; ok is false when no series matches.
func (s Scrape) Value(name string, labels ...string) (v float64, ok bool) {
	for _, m := range s.series(name, labels) {
		ok = true
		switch {
		case m.Counter != nil:
			v += m.Counter.GetValue()
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		case m.Histogram != nil:
			v += float64(m.Histogram.GetSampleCount())
		case m.Untyped != nil:
			v += m.Untyped.GetValue()
		}
	}
	return v, ok
}

// Sum sums the sums of the samples of the histograms of family name whose
// labels include labels.
func (s Scrape) Sum(name string, labels ...string) float64 {
	var sum float64
	for _, m := range s.series(name, labels) {
		sum += m.GetHistogram().GetSampleSum()
	}
	return sum
}

// LabelValues lists the values that label takes in family name.
func (s Scrape) LabelValues(name, label string) []string {
	var out []string
	for _, m := range s.series(name, nil) {
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				out = append(out, l.GetValue())
			}
		}
	}
	return out
}

// series are the series of family name whose labels include labels.
func (s Scrape) series(name string, labels []string) []*dto.Metric {
	f, ok := s[name]
	if !ok {
		return nil
	}
	var out []*dto.Metric
	for _, m := range f.GetMetric() {
		if hasLabels(m, labels) {
			out = append(out, m)
		}
	}
	return out
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
