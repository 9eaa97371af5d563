//go:debug multipathtcp=0

//go:build linux

// Command workload is the synthetic application the tests and benchmarks
// migrate. It runs as PID 1 of the lab's workload image.
//
//	workload [--mem-mib N] [--dirty-pages-per-sec N] [--listen ADDR] ...
//	workload query ADDR status|verify
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/internal/workload"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "query" {
		os.Exit(query(os.Args[2:]))
	}
	cfg := workload.DefaultConfig()
	fs := pflag.NewFlagSet("workload", pflag.ExitOnError)
	fs.IntVar(&cfg.MemMiB, "mem-mib", cfg.MemMiB, "MiB of memory held in a verifiable pattern")
	fs.IntVar(&cfg.DirtyPagesPerSec, "dirty-pages-per-sec", cfg.DirtyPagesPerSec, "pattern pages rewritten per second")
	fs.StringVar(&cfg.Listen, "listen", cfg.Listen, "heartbeat TCP address")
	fs.DurationVar(&cfg.Tick, "tick", cfg.Tick, "heartbeat and counter period")
	fs.DurationVar(&cfg.VerifyEvery, "verify-every", cfg.VerifyEvery, "full memory verification period (0: on request only)")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory for the start marker file")
	thp := fs.Bool("thp", false, "let the kernel back the region with transparent huge pages (its dirty tracking then works in 2 MiB units)")
	fs.StringVar(&cfg.StatusFile, "status-file", "", "on SIGUSR1, verify memory and write the status line here (with --listen \"\": no heartbeat server)")
	inFlight := fs.String("unix-in-flight", "", "keep a Unix connection to a socket at this path in flight (connected and written, not accepted): CRIU cannot dump that")
	acceptOnSignal := fs.Bool("accept-on-signal", false, "with --unix-in-flight: accept the connection on SIGUSR2")
	fs.Parse(os.Args[1:])

	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	if *inFlight != "" {
		go holdInFlight(*inFlight, *acceptOnSignal, log)
	}
	if err := run(cfg, *thp, log); err != nil {
		log.Error("workload failed", "err", err)
		os.Exit(1)
	}
}

func run(cfg workload.Config, thp bool, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	region, err := allocate(cfg.MemMiB<<20, thp)
	if err != nil {
		return err
	}
	w, err := workload.New(cfg, log, region)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return w.Run(ctx)
}

// allocate maps the region outside the Go heap so its size and layout do not
// depend on the garbage collector. Without thp the region is kept in 4 KiB
// pages, so that writing one page dirties one page: with transparent huge
// pages, soft-dirty tracking (pre-copy) sees a whole 2 MiB dirty.
func allocate(size int, thp bool) ([]byte, error) {
	if size == 0 {
		return nil, nil
	}
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", size, err)
	}
	if !thp {
		if err := syscall.Madvise(b, unix.MADV_NOHUGEPAGE); err != nil {
			return nil, fmt.Errorf("madvise: %w", err)
		}
	}
	return b, nil
}

func query(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: workload query ADDR status|verify")
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := workload.Query(ctx, args[0], workload.Command(args[1]))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(b)
	if b.Bad > 0 {
		return 1
	}
	return 0
}
