package workload

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// Config describes one workload process.
type Config struct {
	// MemMiB is the size of the pattern region in MiB. Default 64; zero holds none.
	MemMiB int
	// DirtyPagesPerSec is how many pattern pages are rewritten per second.
	// Default 256 (1 MiB/s); zero leaves memory unchanged after start.
	DirtyPagesPerSec int
	// Listen is the TCP address of the heartbeat server. Default ":7000";
	// "" runs without one (then StatusFile is the way to query it).
	Listen string
	// StatusFile, when set, receives a status line (a verification's result,
	// as the verify command answers) each time the process gets SIGUSR1.
	// Default "".
	StatusFile string
	// Tick is the heartbeat and counter period. Default 10ms.
	Tick time.Duration
	// VerifyEvery is the period of full memory verification. Default 2s;
	// zero verifies only on request.
	VerifyEvery time.Duration
	// DataDir, when set, receives a file "workload.started" written once at
	// start, so tests can check that files survive a migration. Default "".
	DataDir string
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{MemMiB: 64, DirtyPagesPerSec: 256, Listen: ":7000", Tick: 10 * time.Millisecond, VerifyEvery: 2 * time.Second}
}

// Validate reports a configuration that cannot run.
func (c Config) Validate() error {
	switch {
	case c.MemMiB < 0:
		return errors.New("workload: memory size must not be negative")
	case c.DirtyPagesPerSec < 0:
		return errors.New("workload: dirty rate must not be negative")
	case c.Tick <= 0:
		return errors.New("workload: tick must be positive")
	case c.VerifyEvery < 0:
		return errors.New("workload: verify period must not be negative")
	case c.Listen == "" && c.StatusFile == "":
		return errors.New("workload: neither a listen address nor a status file")
	}
	return nil
}

// Workload is a running instance.
type Workload struct {
	cfg     Config
	log     *slog.Logger
	mem     *Memory
	counter atomic.Uint64 // ticks since start; survives migration
	run     uint64        // Beat.Run
	dirtied atomic.Uint64
	rounds  atomic.Uint64 // completed verification rounds
	bad     atomic.Uint64 // bad pages found, summed over all rounds
	stalls  stallHist     // how long the page writes of dirty took
}

// New allocates and fills the memory region.
func New(cfg Config, log *slog.Logger, region []byte) (*Workload, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(region) != cfg.MemMiB<<20 {
		return nil, fmt.Errorf("workload: region is %d bytes, want %d", len(region), cfg.MemMiB<<20)
	}
	return &Workload{cfg: cfg, log: log, mem: NewMemory(region), run: rand.Uint64()}, nil
}

// Run listens on Config.Listen, if set, and serves until ctx ends.
func (w *Workload) Run(ctx context.Context) error {
	if w.cfg.Listen == "" {
		return w.Serve(ctx, nil)
	}
	ln, err := net.Listen("tcp", w.cfg.Listen)
	if err != nil {
		return fmt.Errorf("workload: listen: %w", err)
	}
	return w.Serve(ctx, ln)
}

// Serve runs the workload with heartbeat clients accepted from ln (nil for
// none) until ctx ends; it closes ln.
func (w *Workload) Serve(ctx context.Context, ln net.Listener) error {
	if err := w.writeStarted(); err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.tick(ctx) })
	g.Go(func() error { return w.dirty(ctx) })
	g.Go(func() error { return w.verifyLoop(ctx) })
	if ln != nil {
		w.log.Info("workload running", "pages", w.mem.Pages(), "listen", ln.Addr().String())
		g.Go(func() error { return w.serve(ctx, ln) })
	} else {
		w.log.Info("workload running", "pages", w.mem.Pages(), "status_file", w.cfg.StatusFile)
	}
	if w.cfg.StatusFile != "" {
		g.Go(func() error { return w.statusOnSignal(ctx) })
	}
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (w *Workload) writeStarted() error {
	if w.cfg.DataDir == "" {
		return nil
	}
	body := fmt.Sprintf("pid=%d pages=%d started=%s\n", os.Getpid(), w.mem.Pages(), time.Now().UTC().Format(time.RFC3339Nano))
	if err := os.WriteFile(filepath.Join(w.cfg.DataDir, "workload.started"), []byte(body), 0o644); err != nil {
		return fmt.Errorf("workload: write start file: %w", err)
	}
	return nil
}

func (w *Workload) tick(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			w.counter.Add(1)
		}
	}
}

// dirty rewrites random pages, spreading the per-second budget over ticks.
func (w *Workload) dirty(ctx context.Context) error {
	if w.cfg.DirtyPagesPerSec == 0 || w.mem.Pages() == 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	t := time.NewTicker(w.cfg.Tick)
	defer t.Stop()
	perTick := float64(w.cfg.DirtyPagesPerSec) * w.cfg.Tick.Seconds()
	owed := 0.0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		owed += perTick
		for ; owed >= 1; owed-- {
			start := time.Now()
			w.mem.Dirty(rand.IntN(w.mem.Pages()))
			w.stalls.add(time.Since(start))
			w.dirtied.Add(1)
		}
	}
}

func (w *Workload) verifyLoop(ctx context.Context) error {
	if w.cfg.VerifyEvery == 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	t := time.NewTicker(w.cfg.VerifyEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			w.verify()
		}
	}
}

// verify runs one full round and logs it; a mismatch is logged as an error
// so that `docker logs` shows corruption.
func (w *Workload) verify() (bad int) {
	bad = w.mem.Verify()
	w.bad.Add(uint64(bad))
	round := w.rounds.Add(1)
	level := slog.LevelInfo
	if bad > 0 {
		level = slog.LevelError
	}
	w.log.Log(context.Background(), level, "verify", "round", round, "pages", w.mem.Pages(), "bad", bad, "counter", w.counter.Load())
	return bad
}

func (w *Workload) serve(ctx context.Context, ln net.Listener) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("workload: accept: %w", err)
		}
		go w.handle(ctx, c)
	}
}

// handle answers one client; see the Command constants for the protocol.
func (w *Workload) handle(ctx context.Context, c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	switch Command(strings.TrimSpace(line)) {
	case CmdStatus:
		fmt.Fprintln(c, w.status().String())
	case CmdVerify:
		w.verify()
		fmt.Fprintln(c, w.status().String())
	case CmdStream:
		w.stream(ctx, c)
	case CmdStalls:
		fmt.Fprintln(c, w.stalls.take().String())
	case CmdFlood:
		w.flood(ctx, c, br)
	default:
		fmt.Fprintf(c, "error=unknown-command\n")
	}
}

func (w *Workload) stream(ctx context.Context, c net.Conn) {
	t := time.NewTicker(w.cfg.Tick)
	defer t.Stop()
	for seq := uint64(1); ; seq++ {
		b := w.status()
		b.Seq = seq
		if _, err := fmt.Fprintln(c, b.String()); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// statusOnSignal verifies memory and writes the status line to the status
// file (atomically) on each SIGUSR1.
func (w *Workload) statusOnSignal(ctx context.Context) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	defer signal.Stop(sig)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-sig:
		}
		w.verify()
		tmp := w.cfg.StatusFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(w.status().String()+"\n"), 0o644); err != nil {
			return fmt.Errorf("workload: status file: %w", err)
		}
		if err := os.Rename(tmp, w.cfg.StatusFile); err != nil {
			return fmt.Errorf("workload: status file: %w", err)
		}
	}
}

func (w *Workload) status() Beat {
	return Beat{
		Counter: w.counter.Load(),
		Rounds:  w.rounds.Load(),
		Bad:     w.bad.Load(),
		Pages:   uint64(w.mem.Pages()),
		Dirtied: w.dirtied.Load(),
		Run:     w.run,
	}
}
