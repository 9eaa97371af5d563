//go:build linux

package bench

import (
	"context"
	"strings"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
)

// dockerCR is the baseline's freeze: `docker checkpoint create` then
// `docker start --checkpoint` of the same container on one host. It returns
// the time Docker needed, leaving out start attempts lost to a race inside
// Docker 20.10 (moby/moby#42900): checkpoint create leaves the checkpoint's
// tar in containerd's content store until containerd's garbage collector
// runs, and start uploads a byte-identical tar of the same directory, so a
// start that comes before the collector fails with "content ... already
// exists". The collector runs within milliseconds; the start is retried and
// only the successful attempt is counted, so Docker is not charged for its
// own bug and the ratio against it stays conservative.
func dockerCR(ctx context.Context, h lab.Host, name string) (time.Duration, error) {
	start := time.Now()
	if _, err := h.Docker(ctx, "checkpoint", "create", name, "cp"); err != nil {
		return time.Since(start), err
	}
	took := time.Since(start)
	for attempt := 1; ; attempt++ {
		start = time.Now()
		_, err := h.Docker(ctx, "start", "--checkpoint", "cp", name)
		if err == nil || !contentRace(err) || attempt == 5 {
			return took + time.Since(start), err
		}
		select {
		case <-ctx.Done():
			return took, ctx.Err()
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
	}
}

// contentRace reports whether err is Docker's checkpoint-upload race.
func contentRace(err error) bool {
	s := err.Error()
	return strings.Contains(s, "failed to upload checkpoint to containerd") &&
		strings.Contains(s, "already exists")
}
