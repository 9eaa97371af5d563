// Package metrics exposes migrate-dst's metrics to Prometheus: a registry
// of its own (the Go runtime's and the process's collectors, and the
// destination's), the HTTP endpoint that serves it, and Destination, the
// migrate.Observer that counts what the destination does. Nothing is
// registered with the client library's global registry.
package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dockmove/dockmove/migrate"
	"github.com/dockmove/dockmove/protocol"
)

// Namespace prefixes every metric of the destination.
const Namespace = "dockmove_destination"

// Path is where the endpoint serves the metrics.
const Path = "/metrics"

// Buckets of the histograms, in seconds. The freeze spent on a destination
// ranges from tens of milliseconds to a slow restore's minutes; post-copy
// lasts as long as the memory takes to cross the link.
var (
	freezeBuckets   = []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}
	postCopyBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900}
)

// Labels' values outside their vocabulary (protocol.Strategies, the
// Outcomes, the RefusalReasons) are counted under this one, so that no
// label carries text a peer chose.
const otherLabel = "other"

// Destination counts a destination's migrations and refusals into its
// own registry. It is a migrate.Observer; its methods are safe for
// concurrent use.
type Destination struct {
	reg        *prometheus.Registry
	migrations *prometheus.CounterVec
	inFlight   prometheus.Gauge
	freeze     *prometheus.HistogramVec
	postCopy   *prometheus.HistogramVec
	received   *prometheus.CounterVec
	refusals   *prometheus.CounterVec
}

var _ migrate.Observer = (*Destination)(nil)

// NewDestination returns a Destination whose every series exists from the
// start, at zero, so that a rate over the first migration is not lost.
func NewDestination() *Destination {
	d := &Destination{
		reg: prometheus.NewRegistry(),
		migrations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "migrations_total",
			Help: "Migrations this host accepted that ended, by outcome (ok, rolled_back, in_doubt, failed) and strategy."},
			[]string{"outcome", "strategy"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: "migrations_in_flight",
			Help: "Migrations this host accepted that have not ended."}),
		freeze: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "freeze_seconds",
			Help:    "The part of each migration's freeze spent on this host: from the final dump received to the copy reported running, by strategy.",
			Buckets: freezeBuckets}, []string{"strategy"}),
		postCopy: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: "post_copy_seconds",
			Help:    "How long a post-copy migration's memory took to follow its copy: from the copy reported running to the last page here, by strategy.",
			Buckets: postCopyBuckets}, []string{"strategy"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "received_bytes_total",
			Help: "Bytes received by the migrations this host accepted, added as each ends, by kind (wire: on the connection, TLS and framing included)."},
			[]string{"kind"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "refusals_total",
			Help: "Peers and migrations (dry runs included) this host refused, by reason class; a preflight refused for several classes counts under each."},
			[]string{"reason"}),
	}
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		d.migrations, d.inFlight, d.freeze, d.postCopy, d.received, d.refusals)
	for _, s := range protocol.Strategies {
		for _, o := range migrate.Outcomes {
			d.migrations.WithLabelValues(o.String(), s.String())
		}
		d.freeze.WithLabelValues(s.String())
		if s.PostCopy() {
			d.postCopy.WithLabelValues(s.String())
		}
	}
	d.received.WithLabelValues(kindWire)
	for _, r := range migrate.RefusalReasons {
		d.refusals.WithLabelValues(r.String())
	}
	return d
}

// kindWire is the received bytes' kind for bytes counted on the
// connection.
const kindWire = "wire"

// MigrationStarted counts a migration in flight.
func (d *Destination) MigrationStarted(protocol.Strategy) { d.inFlight.Inc() }

// MigrationEnded counts the migration's end, its freeze here, its
// post-copy and its bytes. The migration is counted last: a scrape that
// begins after one saw it sees the rest.
func (d *Destination) MigrationEnded(r migrate.MigrationResult) {
	strategy := label(r.Strategy, protocol.Strategies)
	if r.Freeze > 0 {
		d.freeze.WithLabelValues(strategy).Observe(r.Freeze.Seconds())
	}
	if r.PostCopy > 0 {
		d.postCopy.WithLabelValues(strategy).Observe(r.PostCopy.Seconds())
	}
	if r.WireBytes > 0 {
		d.received.WithLabelValues(kindWire).Add(float64(r.WireBytes))
	}
	d.inFlight.Dec()
	d.migrations.WithLabelValues(label(r.Outcome, migrate.Outcomes), strategy).Inc()
}

// Refused counts a refusal.
func (d *Destination) Refused(r migrate.RefusalReason) {
	d.refusals.WithLabelValues(label(r, migrate.RefusalReasons)).Inc()
}

// label is v as a label value: itself if it is one of values, else
// otherLabel.
func label[T ~string](v T, values []T) string {
	if slices.Contains(values, v) {
		return string(v)
	}
	return otherLabel
}

// Handler serves the registry's metrics at Path, in the exposition
// format the scraper asks for; other paths are not found.
func (d *Destination) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(Path, promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{Registry: d.reg}))
	return mux
}

// Serve answers scrapes on ln until ctx ends, then closes ln; it returns
// nil then, or why it stopped before.
func (d *Destination) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second}
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) && ctx.Err() != nil {
		return nil
	}
	return err
}
