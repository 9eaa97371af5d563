//go:build linux

package bench

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
)

// dockerCR is the baseline's freeze: `docker checkpoint create` then
// `docker start --checkpoint` of the same container on one host. It returns
// the time Docker needed, leaving out start attempts lost to a defect of
// Docker 20.10 (moby/moby#42900): checkpoint create leaves the checkpoint's
// tar in containerd's content store until containerd's garbage collector
// runs, and start uploads a byte-identical tar of the same directory, so a
// start that comes before the collector fails with "content ... already
// exists". The collector may wait: it runs at most 2 % of the time, so one
// that took 10 ms holds off for half a second (CI once lost five attempts
// over 500 ms to it). Waiting is no cure, so the leftover blob is removed
// through containerd, as the collector would, and start is tried again.
// Only the successful attempt is counted, so Docker is not charged for its
// own defect and the ratio against it stays conservative.
func dockerCR(ctx context.Context, h lab.Host, name string) (time.Duration, error) {
	start := time.Now()
	if _, err := h.Docker(ctx, "checkpoint", "create", name, "cp"); err != nil {
		return time.Since(start), err
	}
	took := time.Since(start)
	for attempt := 1; ; attempt++ {
		start = time.Now()
		_, err := h.Docker(ctx, "start", "--checkpoint", "cp", name)
		digest := leftoverCheckpoint(err)
		if err == nil || digest == "" || attempt == 3 {
			return took + time.Since(start), err
		}
		if rmErr := removeContent(ctx, h, digest); rmErr != nil {
			return took, fmt.Errorf("%w (and removing the leftover checkpoint: %v)", err, rmErr)
		}
	}
}

var leftoverRE = regexp.MustCompile(`failed to upload checkpoint to containerd: .*content (sha256:[0-9a-f]{64}): already exists`)

// leftoverCheckpoint returns the digest of the blob that made start fail
// with Docker's checkpoint-upload defect, or "" for any other outcome.
func leftoverCheckpoint(err error) string {
	if err == nil {
		return ""
	}
	if m := leftoverRE.FindStringSubmatch(err.Error()); m != nil {
		return m[1]
	}
	return ""
}

// removeContent deletes a blob from the content store of h's containerd
// (the one its dockerd manages, namespace moby).
func removeContent(ctx context.Context, h lab.Host, digest string) error {
	out, err := exec.CommandContext(ctx, "ctr", "--address", h.ContainerdSock(), "--connect-timeout", "5s", "--namespace", "moby", "content", "rm", digest).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr content rm %s on %s: %w: %s", digest, h.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}
