package metrics

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/metrics/metricstest"
	"github.com/dockmove/dockmove/migrate"
	"github.com/dockmove/dockmove/protocol"
)

// Metric names, spelled here again so that a renamed metric fails.
const (
	migrationsTotal = "dockmove_destination_migrations_total"
	inFlight        = "dockmove_destination_migrations_in_flight"
	freezeSeconds   = "dockmove_destination_freeze_seconds"
	postCopySeconds = "dockmove_destination_post_copy_seconds"
	receivedBytes   = "dockmove_destination_received_bytes_total"
	refusalsTotal   = "dockmove_destination_refusals_total"
)

// scrape serves d's handler for the test and scrapes it once.
func scrape(t *testing.T, d *Destination) metricstest.Scrape {
	t.Helper()
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()
	return metricstest.Get(t, srv.Client(), srv.URL+Path)
}

// want checks the value of one series of s.
func want(t *testing.T, s metricstest.Scrape, v float64, name string, labels ...string) {
	t.Helper()
	got, ok := s.Value(name, labels...)
	if !ok {
		t.Errorf("%s%q: no such series", name, labels)
	} else if got != v {
		t.Errorf("%s%q = %v, want %v", name, labels, got, v)
	}
}

// Every series a dashboard plots exists before the first migration, at 0.
func TestSeriesExistAtZeroWithFakeDestination(t *testing.T) {
	s := scrape(t, NewDestination())
	for _, st := range protocol.Strategies {
		for _, o := range migrate.Outcomes {
			want(t, s, 0, migrationsTotal, "outcome", o.String(), "strategy", st.String())
		}
		want(t, s, 0, freezeSeconds, "strategy", st.String())
	}
	want(t, s, 0, postCopySeconds, "strategy", "lazy")
	want(t, s, 0, inFlight)
	want(t, s, 0, receivedBytes, "kind", "wire")
	for _, r := range migrate.RefusalReasons {
		want(t, s, 0, refusalsTotal, "reason", r.String())
	}
	if _, ok := s.Value("go_goroutines"); !ok {
		t.Error("no go_goroutines: the Go collector is not registered")
	}
	if _, ok := s.Value("process_cpu_seconds_total"); !ok && runtime.GOOS == "linux" {
		t.Error("no process_cpu_seconds_total: the process collector is not registered")
	}
}

// The destination's calls move the counters, the histograms and the
// gauge: three migrations, as a destination reports them.
func TestMigrationsAreCountedWithFakeMigrations(t *testing.T) {
	d := NewDestination()
	d.MigrationStarted(protocol.StrategyStopAndCopy)
	d.MigrationStarted(protocol.StrategyStopAndCopy)
	d.MigrationStarted(protocol.StrategyLazy)
	s := scrape(t, d)
	want(t, s, 3, inFlight)

	d.MigrationEnded(migrate.MigrationResult{Strategy: protocol.StrategyStopAndCopy, Outcome: migrate.OutcomeOK,
		Freeze: 300 * time.Millisecond, WireBytes: 1000})
	d.MigrationEnded(migrate.MigrationResult{Strategy: protocol.StrategyStopAndCopy, Outcome: migrate.OutcomeRolledBack, WireBytes: 10})
	d.MigrationEnded(migrate.MigrationResult{Strategy: protocol.StrategyLazy, Outcome: migrate.OutcomeOK,
		Freeze: 200 * time.Millisecond, PostCopy: 2 * time.Second, WireBytes: 5000})
	s = scrape(t, d)
	want(t, s, 0, inFlight)
	want(t, s, 1, migrationsTotal, "outcome", "ok", "strategy", "stop-and-copy")
	want(t, s, 1, migrationsTotal, "outcome", "rolled_back", "strategy", "stop-and-copy")
	want(t, s, 1, migrationsTotal, "outcome", "ok", "strategy", "lazy")
	want(t, s, 3, migrationsTotal)
	// A migration rolled back before its copy ran has no freeze here.
	want(t, s, 1, freezeSeconds, "strategy", "stop-and-copy")
	want(t, s, 1, freezeSeconds, "strategy", "lazy")
	if sum := s.Sum(freezeSeconds, "strategy", "stop-and-copy"); sum != 0.3 {
		t.Errorf("freeze sum %v, want 0.3", sum)
	}
	want(t, s, 1, postCopySeconds, "strategy", "lazy")
	want(t, s, 0, postCopySeconds, "strategy", "hybrid")
	if sum := s.Sum(postCopySeconds); sum != 2 {
		t.Errorf("post-copy sum %v, want 2", sum)
	}
	want(t, s, 6010, receivedBytes, "kind", "wire")
}

// Refusals are counted by their class; a class outside the vocabulary
// (which only a bug could make) is counted as other, never as its text.
func TestRefusalsAreCountedByClassWithFakeDestination(t *testing.T) {
	d := NewDestination()
	for _, r := range []migrate.RefusalReason{migrate.RefusalPolicy, migrate.RefusalPolicy, migrate.RefusalAuth,
		migrate.RefusalDisk, "a label \"from\" {the wire}"} {
		d.Refused(r)
	}
	s := scrape(t, d)
	for _, tc := range []struct {
		reason string
		n      float64
	}{{"policy", 2}, {"auth", 1}, {"disk", 1}, {"other", 1}, {"busy", 0}, {"version", 0}} {
		want(t, s, tc.n, refusalsTotal, "reason", tc.reason)
	}
	for _, v := range s.LabelValues(refusalsTotal, "reason") {
		if !slices.Contains(migrate.RefusalReasons, migrate.RefusalReason(v)) {
			t.Errorf("refusal reason %q is outside the vocabulary", v)
		}
	}
}

// A strategy or outcome outside the vocabulary is counted as other.
func TestUnknownLabelsAreOtherWithFakeMigration(t *testing.T) {
	d := NewDestination()
	d.MigrationStarted("teleport")
	d.MigrationEnded(migrate.MigrationResult{Strategy: "teleport", Outcome: "vanished", Freeze: time.Second})
	s := scrape(t, d)
	want(t, s, 1, migrationsTotal, "outcome", "other", "strategy", "other")
	want(t, s, 1, freezeSeconds, "strategy", "other")
	for _, v := range s.LabelValues(migrationsTotal, "strategy") {
		if v != "other" && !slices.Contains(protocol.Strategies, protocol.Strategy(v)) {
			t.Errorf("strategy %q is outside the vocabulary", v)
		}
	}
}

// Migrations end on their own goroutines, several at once (run with
// -race).
func TestConcurrentMigrationsWithFakeMigrations(t *testing.T) {
	d := NewDestination()
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			d.MigrationStarted(protocol.StrategyPrecopy)
			d.Refused(migrate.RefusalBusy)
			d.MigrationEnded(migrate.MigrationResult{Strategy: protocol.StrategyPrecopy, Outcome: migrate.OutcomeInDoubt,
				Freeze: 50 * time.Millisecond, WireBytes: 2})
		})
	}
	wg.Wait()
	s := scrape(t, d)
	want(t, s, 50, migrationsTotal, "outcome", "in_doubt", "strategy", "precopy")
	want(t, s, 50, freezeSeconds, "strategy", "precopy")
	want(t, s, 50, refusalsTotal, "reason", "busy")
	want(t, s, 100, receivedBytes)
	want(t, s, 0, inFlight)
}

// The handler serves the metrics at Path and nothing elsewhere.
func TestHandlerServesOnlyItsPath(t *testing.T) {
	srv := httptest.NewServer(NewDestination().Handler())
	defer srv.Close()
	for path, status := range map[string]int{Path: http.StatusOK, "/": http.StatusNotFound, "/debug/pprof/": http.StatusNotFound} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Errorf("GET %s: %s, want %d", path, resp.Status, status)
		}
	}
}

// Serve answers on its listener (real TCP on loopback) until its context
// ends, then returns nil and the listener is closed.
func TestServeEndsWithItsContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := NewDestination()
	d.Refused(migrate.RefusalVersion)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, ln) }()
	s := metricstest.Get(t, nil, "http://"+ln.Addr().String()+Path)
	want(t, s, 1, refusalsTotal, "reason", "version")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after its context ended: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still runs 10 s after its context ended")
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("the listener still accepts after Serve returned")
	}
}
