package migrate

import (
	"errors"
	"strings"
	"testing"

	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

func TestChooseStrategy(t *testing.T) {
	uffd := transfer.CRIUInfo{Version: 40201, LazyPages: true}
	none := transfer.CRIUInfo{Version: 40201}
	both := transfer.CRIUInfo{Version: 40201, LazyPages: true, MemTrack: true}
	track := transfer.CRIUInfo{Version: 40201, MemTrack: true}
	tests := []struct {
		name        string
		requested   protocol.Strategy
		local, peer transfer.CRIUInfo
		want        protocol.Strategy
		reason      string
		err         bool
	}{
		{"auto with soft-dirty on the source and uffd on both", "auto", both, uffd, "hybrid", "pre-copy rounds", false},
		{"auto with soft-dirty only", "auto", both, none, "precopy", "no post-copy because the destination has no userfaultfd", false},
		{"auto with uffd on both but no soft-dirty (this VM)", "auto", uffd, uffd, "lazy", "pre-copy skipped because the source's kernel cannot track dirty memory", false},
		{"auto without uffd on the destination", "auto", uffd, none, "stop-and-copy", "destination has no userfaultfd", false},
		{"auto without anything", "auto", none, none, "stop-and-copy", "CONFIG_MEM_SOFT_DIRTY", false},
		{"soft-dirty on the destination only does not help", "auto", uffd, both, "lazy", "pre-copy skipped", false},
		{"lazy where possible", "lazy", uffd, uffd, "lazy", "requested", false},
		{"lazy without uffd on the source", "lazy", none, uffd, "", "source has no userfaultfd", true},
		{"precopy where possible", "precopy", track, none, "precopy", "requested", false},
		{"precopy without soft-dirty names the kernel feature", "precopy", uffd, both, "", "mem_dirty_track", true},
		{"hybrid where possible", "hybrid", both, uffd, "hybrid", "requested", false},
		{"hybrid without soft-dirty", "hybrid", uffd, uffd, "", "CONFIG_MEM_SOFT_DIRTY", true},
		{"hybrid without uffd on the destination", "hybrid", both, track, "", "destination has no userfaultfd", true},
		{"stop-and-copy always", "stop-and-copy", none, none, "stop-and-copy", "requested", false},
		{"unknown", "teleport", uffd, uffd, "", "unknown strategy", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason, err := chooseStrategy(tt.requested, tt.local, tt.peer)
			if tt.err {
				if !errors.Is(err, ErrStrategyUnavailable) || !strings.Contains(err.Error(), tt.reason) {
					t.Fatalf("got %q, %v; want an error naming %q", got, err, tt.reason)
				}
				return
			}
			if err != nil || got != tt.want || !strings.Contains(reason, tt.reason) {
				t.Fatalf("got %q (%q), %v; want %q (%q)", got, reason, err, tt.want, tt.reason)
			}
		})
	}
}
