//go:build linux

package migrate

import (
	"context"
	"errors"
	"fmt"

	"github.com/dockmove/dockmove/internal/docker"
)

// DrainResult is what became of one container of a drain.
type DrainResult struct {
	Container string  `json:"container"`
	Report    *Report `json:"report,omitempty"`
	Error     string  `json:"error,omitempty"` // empty: moved (or, for a check, would move)
}

// ErrDrainIncomplete reports a drain that left containers on this host.
var ErrDrainIncomplete = errors.New("the host is not drained")

// Drain moves every running container of this host (those carrying all of
// labels, if any) to cfg.To, one after the other: their freezes never
// overlap and each keeps the promise of one migration (a container that
// fails to move runs on here). It goes on past a container that cannot
// move and reports each; with cfg.DryRun it only checks them all. onEach,
// if set, sees each result as it comes.
func Drain(ctx context.Context, cfg SourceConfig, labels []string, onEach func(DrainResult)) ([]DrainResult, error) {
	dk, err := docker.New(cfg.Docker)
	if err != nil {
		return nil, err
	}
	names, err := dk.RunningContainers(ctx, labels)
	dk.Close()
	if err != nil {
		return nil, err
	}
	var out []DrainResult
	failed := 0
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		c := cfg
		c.Container, c.Pid = name, 0
		r, err := Migrate(ctx, c)
		res := DrainResult{Container: name, Report: r}
		if err != nil {
			res.Error = err.Error()
			failed++
		}
		out = append(out, res)
		if onEach != nil {
			onEach(res)
		}
	}
	switch {
	case ctx.Err() != nil:
		return out, fmt.Errorf("%w: interrupted after %d of %d containers: %v", ErrDrainIncomplete, len(out), len(names), context.Cause(ctx))
	case failed > 0:
		return out, fmt.Errorf("%w: %d of %d containers stay", ErrDrainIncomplete, failed, len(names))
	}
	return out, nil
}
