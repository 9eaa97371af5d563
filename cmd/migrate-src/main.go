//go:debug multipathtcp=0

//go:build linux

// Command migrate-src moves a running Docker container to another host
// running migrate-dst:
//
//	migrate-src --to HOST[:PORT] [flags] CONTAINER
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/dockmove/dockmove/internal/cli"
	"github.com/dockmove/dockmove/migrate"
)

func main() {
	os.Exit(run())
}

func run() int {
	cfg := migrate.DefaultSourceConfig()
	var tf cli.TransferFlags
	var asJSON, verbose bool
	fs := pflag.NewFlagSet("migrate-src", pflag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: migrate-src --to HOST[:PORT] [flags] CONTAINER\n\n%s", fs.FlagUsages())
	}
	fs.StringVar(&cfg.To, "to", "", "destination migrate-dst, HOST[:PORT] (default port 7070)")
	fs.StringVar(&cfg.Docker, "docker-host", "", "local dockerd (default: DOCKER_HOST or the default socket)")
	fs.StringVar(&cfg.Strategy, "strategy", cfg.Strategy, "migration strategy: stop-and-copy, lazy (post-copy) or auto (lazy where both hosts have userfaultfd)")
	fs.BoolVar(&cfg.KeepSource, "keep-source", false, "keep the stopped original container instead of removing it")
	fs.BoolVar(&cfg.AllowNewAddress, "allow-new-address", false, "if the destination cannot keep the container's IP/MAC, accept a new address (its TCP connections are closed)")
	fs.StringVar(&cfg.WorkDir, "work-dir", cfg.WorkDir, "where the dump is written while it is shipped")
	fs.StringVar(&cfg.CRIU, "criu", "", "criu binary (default: criu in PATH)")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON on stdout")
	fs.BoolVarP(&verbose, "verbose", "v", false, "log details to stderr")
	tf.Register(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 1 || cfg.To == "" {
		fs.Usage()
		return 2
	}
	cfg.Container = fs.Arg(0)
	if _, _, err := net.SplitHostPort(cfg.To); err != nil {
		cfg.To = net.JoinHostPort(cfg.To, "7070")
	}
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg.Logger = log
	var err error
	if cfg.Transfer, err = tf.Config(false, log); err != nil {
		fmt.Fprintln(os.Stderr, "migrate-src:", err)
		return 1
	}
	if p := cli.NewProgress(os.Stderr); p != nil {
		cfg.Transfer.Progress = p.Update
	}
	start := time.Now()
	cfg.OnStage = func(stage string) {
		fmt.Fprintf(os.Stderr, "[%6.2fs] %s\n", time.Since(start).Seconds(), stage)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	report, err := migrate.Migrate(ctx, cfg)
	if asJSON && report != nil {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(report)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "migrate-src: %s was not migrated: %v\n", cfg.Container, err)
		return 1
	}
	printSummary(report)
	return 0
}

func printSummary(r *migrate.Report) {
	for name, s := range r.Streams {
		rate := float64(s.Bytes) / s.Duration.Seconds()
		fmt.Fprintf(os.Stderr, "  %-8s %10s -> %10s on the wire in %6.2fs (%s/s)\n", name, cli.Size(s.Bytes), cli.Size(s.WireBytes), s.Duration.Seconds(), cli.Size(int64(rate)))
	}
	if r.Strategy == "lazy" {
		fmt.Fprintf(os.Stderr, "  post-copy: %s of memory followed in %.2fs after the restart\n", cli.Size(r.PageBytes), r.MemoryTime.Seconds())
	}
	fmt.Fprintf(os.Stderr, "migrated %s to %s (%s): freeze time %d ms, total %.2fs, %s sent (%s on the wire)\n",
		r.Container, r.Destination, r.Strategy, r.FreezeTime.Milliseconds(), r.TotalTime.Seconds(), cli.Size(r.BytesRaw+r.PageBytes), cli.Size(r.BytesWire+r.PageBytes))
}
