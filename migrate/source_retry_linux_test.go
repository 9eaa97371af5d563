package migrate

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/criu"
)

// TestDumpIsRetriedOnlyForAMomentaryCauseWithFakeErrors: a dump that
// failed because a Unix connection was in flight at the freeze (a client
// of the container's server had connected and written, not yet accepted:
// seen with PostgreSQL's local clients) is made again, its images
// cleared; any other failure, a failure after shipping began, a pre-copy
// final dump and a third attempt are not.
func TestDumpIsRetriedOnlyForAMomentaryCauseWithFakeErrors(t *testing.T) {
	inFlight := &criu.Error{Op: "dump", Cause: "unix: Non-empty write queue on an in-flight socket 0x24709c", Err: errors.New("dump failed")}
	closed := &criu.Error{Op: "dump", Cause: "unix: Found a closed in-flight socket to 0x1234", Err: errors.New("dump failed")}
	other := &criu.Error{Op: "dump", Cause: "File sbin/docker-init has bad size", Err: errors.New("dump failed")}
	for _, c := range []struct {
		name     string
		err      error
		hookErr  error
		shipped  bool
		parent   string
		attempt  int
		wantMore bool
	}{
		{"in flight", inFlight, nil, false, "", 1, true},
		{"closed in flight, second attempt", closed, nil, false, "", 2, true},
		{"wrapped", errors.Join(errors.New("checkpoint"), inFlight), nil, false, "", 1, true},
		{"last attempt", inFlight, nil, false, "", maxDumpAttempts, false},
		{"another cause", other, nil, false, "", 1, false},
		{"not CRIU's", errors.New("session closed"), nil, false, "", 1, false},
		{"after shipping began", inFlight, nil, true, "", 1, false},
		{"the hook failed", inFlight, errors.New("ship"), false, "", 1, false},
		{"pre-copy parent", inFlight, nil, false, "../round-2", 1, false},
		{"success", nil, nil, false, "", 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			images := t.TempDir()
			os.WriteFile(filepath.Join(images, "pages-1.img"), []byte("partial"), 0o600)
			s := &source{log: logger(nil), report: &Report{Stages: map[string]time.Duration{}}}
			if c.shipped {
				s.marks.dumped = time.Now()
			}
			s.marks.frozen = time.Now()
			// Pid 0: unlockNetwork finds no tree and only logs.
			got := s.retryDump(c.err, c.hookErr, criu.DumpSpec{Parent: c.parent}, c.attempt, nil, images)
			if got != c.wantMore {
				t.Fatalf("retryDump = %v, want %v", got, c.wantMore)
			}
			left, _ := os.ReadDir(images)
			if c.wantMore && (len(left) != 0 || len(s.report.DumpRetries) != 1 || !s.marks.frozen.IsZero()) {
				t.Fatalf("before the next attempt: %d images left, retries %q, frozen mark %v", len(left), s.report.DumpRetries, s.marks.frozen)
			}
			if !c.wantMore && (len(left) != 1 || len(s.report.DumpRetries) != 0) {
				t.Fatalf("no retry, yet images %d, retries %q", len(left), s.report.DumpRetries)
			}
		})
	}
}
