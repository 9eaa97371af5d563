//go:debug multipathtcp=0

//go:build linux

// Command dockmove-bench measures freeze times in the lab (make lab-up):
//
//	dockmove-bench [--sizes 64,256,1024,2048] [--strategies ...] [--reps 3] --out DIR
//	dockmove-bench --from DIR/report.json --out DIR
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/dockmove/dockmove/bench"
)

func main() {
	cfg := bench.DefaultConfig()
	self, _ := os.Executable()
	cfg.Bin = filepath.Dir(self)
	fs := pflag.NewFlagSet("dockmove-bench", pflag.ExitOnError)
	fs.StringSliceVar(&cfg.Strategies, "strategies", cfg.Strategies, "strategies: stop-and-copy, stop-and-copy:local-pages, lazy, precopy, precopy:phaul, precopy:lxd, hybrid, docker-checkpoint (the baseline), podman-archive (Podman's checkpoint --export / restore --import, the archive copied over the link)")
	fs.BoolVar(&cfg.AddPrecopy, "add-precopy", cfg.AddPrecopy, "add the pre-copy strategies where this kernel tracks dirty memory")
	fs.IntSliceVar(&cfg.SizesMiB, "sizes", cfg.SizesMiB, "workload memory sizes in MiB")
	fs.IntSliceVar(&cfg.DirtyRates, "dirty-rates", cfg.DirtyRates, "pages dirtied per second by the workload")
	fs.IntVar(&cfg.Reps, "reps", cfg.Reps, "repetitions per case")
	fs.BoolVar(&cfg.Redis, "redis", cfg.Redis, "also migrate redis-server under load")
	fs.BoolVar(&cfg.RedisWrites, "redis-writes", cfg.RedisWrites, "also migrate redis-server under a client that writes")
	fs.IntVar(&cfg.RedisMiB, "redis-mib", cfg.RedisMiB, "redis dataset size in MiB")
	fs.StringSliceVar(&cfg.Hosts, "hosts", cfg.Hosts, "the lab hosts to move between, source first (host3,host4 run Docker 28)")
	fs.StringVar(&cfg.Link, "link", cfg.Link, "shape the link between the hosts to 10gbit or 1gbit (tc tbf on their eth0); default the lab's veth as it is")
	fs.StringVar(&cfg.Bin, "bin", cfg.Bin, "directory with migrate-src and migrate-dst")
	fs.DurationVar(&cfg.CaseTimeout, "case-timeout", cfg.CaseTimeout, "interrupt a migration (it rolls back) and report the case failed after this long")
	fs.StringVar(&cfg.Out, "out", "bench-out", "directory for report.json, report.md and plots")
	from := fs.String("from", "", "render the report and plots again from this report.json instead of measuring")
	fs.Parse(os.Args[1:])
	if *from != "" {
		rep, err := bench.Load(*from)
		if err == nil {
			err = rep.Write(cfg.Out)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "dockmove-bench:", err)
			os.Exit(1)
		}
		fmt.Print(rep.Markdown())
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Run(ctx, cfg, func(line string) { fmt.Fprintln(os.Stderr, line) })
	if err != nil {
		fmt.Fprintln(os.Stderr, "dockmove-bench:", err)
		os.Exit(1)
	}
	fmt.Print(rep.Markdown())
	fmt.Fprintf(os.Stderr, "report in %s\n", cfg.Out)
}
