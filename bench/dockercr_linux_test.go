package bench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab/labtest"
)

// TestRemoveContentReachesTheHostsContainerd: the cure for Docker's
// leftover checkpoint reaches the containerd each lab dockerd manages (both
// flavours), removes a blob there, and fails loudly when it cannot reach it.
func TestRemoveContentReachesTheHostsContainerd(t *testing.T) {
	labtest.RequireBinary(t, "ctr")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, h := range labtest.RequireHosts(t, "host1", "host3") {
		blob := []byte(rand.Text())
		digest := fmt.Sprintf("sha256:%x", sha256.Sum256(blob))
		ctr := func(args ...string) *exec.Cmd {
			return exec.CommandContext(ctx, "ctr", append([]string{"--address", h.ContainerdSock(), "--namespace", "moby", "content"}, args...)...)
		}
		ingest := ctr("ingest", "dockmove-test-"+h.Name)
		ingest.Stdin = strings.NewReader(string(blob))
		if out, err := ingest.CombinedOutput(); err != nil {
			t.Fatalf("%s: ctr content ingest: %v: %s", h.Name, err, out)
		}
		if err := removeContent(ctx, h, digest); err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if out, err := ctr("get", digest).CombinedOutput(); err == nil {
			t.Fatalf("%s: blob %s still there after removal: %q", h.Name, digest, out)
		}
		if h.Name != "host1" {
			continue
		}
		lost := h
		lost.ExecRoot = t.TempDir()
		if err := removeContent(ctx, lost, digest); err == nil || !strings.Contains(err.Error(), "ctr content rm") {
			t.Fatalf("%s: removal through a socket that is not there: %v", h.Name, err)
		}
	}
}
