//go:build linux

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/dockmove/dockmove/internal/cli"
	"github.com/dockmove/dockmove/internal/metrics"
	"github.com/dockmove/dockmove/migrate"
)

// serveMetrics serves the destination's metrics on addr until ctx ends,
// and returns the observer that counts them; nil, and nothing served,
// when addr is "". An address it cannot listen on fails at once, before
// the agent checks this host.
func serveMetrics(ctx context.Context, addr string, log *slog.Logger) (migrate.Observer, error) {
	if addr == "" {
		return nil, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, cli.Usagef("", "--metrics-listen %q: want HOST:PORT or :PORT", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %q: %w", addr, err)
	}
	m := metrics.NewDestination()
	log.Info("serving metrics", "url", "http://"+ln.Addr().String()+metrics.Path)
	go func() {
		if err := m.Serve(ctx, ln); err != nil {
			log.Error("the metrics endpoint stopped; migrations go on", "err", err)
		}
	}()
	return m, nil
}
