//go:build linux

// Package bench measures what users choose a migration tool by: how long
// the service stops. It runs real migrations in the lab (two dockerds, the
// real agents over TLS) across strategies, memory sizes and dirty rates,
// measures the freeze twice (by the agents, and as a client of the
// application sees it), and compares with baselines measured in the same
// run: Docker's own checkpoint/restore on one host, and our stop-and-copy.
package bench

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dockmove/dockmove/predump"
	"github.com/dockmove/dockmove/protocol"
)

// Strategy names in a benchmark: migrate-src's, where "precopy:POLICY"
// is pre-copy with that convergence policy, and the baseline a user
// would otherwise pick.
const (
	StopAndCopy = string(protocol.StrategyStopAndCopy)
	// StopAndCopyLocal dumps the memory to the source's disk and ships it
	// after the dump (migrate-src --local-pages), as stop-and-copy did
	// before remote pages: their ratio in one run is what streaming the
	// pages during the dump gains.
	StopAndCopyLocal = StopAndCopy + ":" + localPages
	Lazy             = string(protocol.StrategyLazy)
	Precopy          = string(protocol.StrategyPrecopy) // adaptive policy
	PrecopyPHaul     = Precopy + ":" + string(predump.PHaul)
	PrecopyLXD       = Precopy + ":" + string(predump.LXD)
	Hybrid           = string(protocol.StrategyHybrid)
	DockerCheckpoint = "docker-checkpoint"
)

// PrecopyStrategies need dirty-memory tracking on the source host; Run
// adds them to the default set where the kernel has it.
var PrecopyStrategies = []string{Precopy, PrecopyPHaul, PrecopyLXD, Hybrid}

// localPages is StopAndCopyLocal's variant name.
const localPages = "local-pages"

// agentArgs are migrate-src's flags for a benchmark strategy.
func agentArgs(strategy string) []string {
	s, variant, ok := strings.Cut(strategy, ":")
	switch {
	case !ok:
		return []string{"--strategy", s}
	case variant == localPages:
		return []string{"--strategy", s, "--local-pages"}
	}
	return []string{"--strategy", s, "--precopy-policy", variant}
}

// Config is one benchmark run.
type Config struct {
	// Strategies to measure. Default stop-and-copy (pages streamed, and
	// local pages as the in-run baseline), lazy, the Docker baseline and
	// the Podman peer (the synthetic workload only),
	// plus PrecopyStrategies where the kernel tracks dirty
	// memory (AddPrecopy).
	Strategies []string
	// AddPrecopy adds PrecopyStrategies to Strategies when this host's
	// kernel can pre-dump; the report says when it cannot. Default true.
	AddPrecopy bool
	// SizesMiB are the workload's memory sizes. Default 64, 256, 1024, 2048.
	SizesMiB []int
	// DirtyRates are the workload's dirtied pages per second. Default 0 and
	// 2560 (10 MiB/s).
	DirtyRates []int
	// Reps is the number of repetitions of each case. Default 3.
	Reps int
	// Redis adds the real-application case: redis-server under a client
	// that keeps issuing requests. Default true.
	Redis bool
	// RedisWrites adds the same case with a client that writes (SET of
	// a new value to each key in turn) instead of reading. Default true.
	RedisWrites bool
	// RedisMiB is redis's dataset size. Default 256.
	RedisMiB int
	// CaseTimeout bounds one migration; migrate-src is then interrupted
	// and rolls back, and the case is reported as failed with the reason.
	// Default 5 minutes.
	CaseTimeout time.Duration
	// Hosts are the lab hosts the container moves between, source first.
	// Default host1, host2 (Docker 20.10); host3, host4 run Docker 28.
	Hosts []string
	// Link shapes the link between the hosts for the run: "10gbit" or
	// "1gbit" (LinkProfiles); "" leaves the lab's veth as it is.
	Link string `json:",omitempty"`
	// Bin holds migrate-src and migrate-dst. Required.
	Bin string
	// Out is where report.json, report.md and the plots go. Required.
	Out string
}

// DefaultConfig returns the documented defaults (Bin and Out unset).
func DefaultConfig() Config {
	return Config{
		Strategies:  []string{StopAndCopy, StopAndCopyLocal, Lazy, DockerCheckpoint, PodmanArchive},
		SizesMiB:    []int{64, 256, 1024, 2048},
		DirtyRates:  []int{0, 2560},
		Reps:        3,
		Redis:       true,
		RedisWrites: true,
		RedisMiB:    256,
		CaseTimeout: 5 * time.Minute,
		Hosts:       []string{"host1", "host2"},
	}
}

// Validate reports a configuration that cannot run.
func (c Config) Validate() error {
	switch {
	case len(c.Strategies) == 0 || len(c.SizesMiB) == 0 || len(c.DirtyRates) == 0:
		return errors.New("bench: strategies, sizes and dirty rates must not be empty")
	case c.Reps < 1:
		return errors.New("bench: at least one repetition")
	case c.Bin == "" || c.Out == "":
		return errors.New("bench: binary and output directories are required")
	case c.CaseTimeout <= 0:
		return errors.New("bench: the case timeout must be positive")
	case len(c.Hosts) != 2 || c.Hosts[0] == c.Hosts[1]:
		return errors.New("bench: two different hosts, source first")
	case c.Redis && c.RedisMiB < 1:
		return errors.New("bench: redis dataset size must be positive")
	}
	for _, s := range c.Strategies {
		if !slices.Contains(append([]string{StopAndCopy, StopAndCopyLocal, Lazy, DockerCheckpoint, PodmanArchive}, PrecopyStrategies...), s) {
			return fmt.Errorf("bench: unknown strategy %q", s)
		}
	}
	for _, m := range c.SizesMiB {
		if m < 1 {
			return fmt.Errorf("bench: memory size %d MiB", m)
		}
	}
	return nil
}
