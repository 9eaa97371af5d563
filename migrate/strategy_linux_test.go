package migrate

import (
	"errors"
	"strings"
	"testing"

	"github.com/dockmove/dockmove/transfer"
)

func TestChooseStrategy(t *testing.T) {
	uffd := transfer.CRIUInfo{Version: 40201, LazyPages: true}
	none := transfer.CRIUInfo{Version: 40201}
	tests := []struct {
		name        string
		requested   string
		local, peer transfer.CRIUInfo
		want        string
		reason      string
		err         bool
	}{
		{"auto with uffd on both", "auto", uffd, uffd, "lazy", "userfaultfd on both", false},
		{"auto without uffd on the destination", "auto", uffd, none, "stop-and-copy", "destination has no userfaultfd", false},
		{"auto without uffd anywhere", "auto", none, none, "stop-and-copy", "neither host", false},
		{"lazy where possible", "lazy", uffd, uffd, "lazy", "requested", false},
		{"lazy without uffd on the source", "lazy", none, uffd, "", "source has no userfaultfd", true},
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
