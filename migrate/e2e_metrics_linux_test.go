package migrate_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/metrics"
	"github.com/dockmove/dockmove/internal/metrics/metricstest"
)

// metricsPort is where the lab's migrate-dst serves its metrics in
// TestDestinationMetrics.
const metricsPort = "9470"

// TestDestinationMetrics: migrate-dst --metrics-listen on host2's address
// counts what it does, as Prometheus scrapes it from another host (here
// host1): a container refused by its label policy counts one policy
// refusal and no migration; a stop-and-copy move counts one ok migration,
// one freeze, the bytes it received, and none in flight once it ended.
func TestDestinationMetrics(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	addr := net.JoinHostPort(e.h2.Addr, metricsPort)
	startDst(t, e, "--metrics-listen", addr, "--deny-label", "traefik.*")
	url := "http://" + addr + metrics.Path
	scraper := &http.Client{Transport: &http.Transport{DialContext: e.h1.Dial}, Timeout: 10 * time.Second}

	refused := unique("metrics-refused")
	runIdle(t, ctx, e, refused, "--label", "traefik.enable=true", "--network", e.h1.Network)
	if _, stderr, err := runSrc(ctx, e, refused, nil); err == nil || !strings.Contains(stderr, "labels this destination refuses") {
		t.Fatalf("a container with a denied label: %v\n%s", err, stderr)
	}
	s := metricstest.Get(t, scraper, url)
	wantMetric(t, s, 1, "dockmove_destination_refusals_total", "reason", "policy")
	wantMetric(t, s, 0, "dockmove_destination_migrations_total")

	moved := unique("metrics-moved")
	runIdle(t, ctx, e, moved, "--network", e.h1.Network)
	if _, stderr, err := runSrc(ctx, e, moved, nil, "--strategy", "stop-and-copy"); err != nil {
		t.Fatalf("migration: %v\n%s", err, stderr)
	}
	// The destination ends the migration once the source has read its
	// acknowledgement. It counts the migration after the rest: the scrape
	// after the one that saw it sees everything.
	awaitMetric(t, ctx, scraper, url, 1, "dockmove_destination_migrations_total")
	s = metricstest.Get(t, scraper, url)
	wantMetric(t, s, 1, "dockmove_destination_migrations_total", "outcome", "ok", "strategy", "stop-and-copy")
	wantMetric(t, s, 1, "dockmove_destination_freeze_seconds", "strategy", "stop-and-copy")
	if sum := s.Sum("dockmove_destination_freeze_seconds", "strategy", "stop-and-copy"); sum <= 0 {
		t.Errorf("freeze sum %v, want the freeze spent on host2", sum)
	}
	wantMetric(t, s, 0, "dockmove_destination_migrations_in_flight")
	wantMetric(t, s, 1, "dockmove_destination_refusals_total")
	if n, _ := s.Value("dockmove_destination_received_bytes_total", "kind", "wire"); n <= 0 {
		t.Errorf("received %v bytes, want the migration's", n)
	}
}

// wantMetric checks the value of one series of s.
func wantMetric(t *testing.T, s metricstest.Scrape, v float64, name string, labels ...string) {
	t.Helper()
	if got, ok := s.Value(name, labels...); !ok || got != v {
		t.Errorf("%s%q = %v (present: %v), want %v", name, labels, got, ok, v)
	}
}

// awaitMetric scrapes url until series name reaches v; it fails t when
// ctx ends first.
func awaitMetric(t *testing.T, ctx context.Context, c *http.Client, url string, v float64, name string, labels ...string) {
	t.Helper()
	for {
		got, _ := metricstest.Get(t, c, url).Value(name, labels...)
		if got >= v {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s%q is %v, want %v", name, labels, got, v)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
