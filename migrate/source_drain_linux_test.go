package migrate

import (
	"slices"
	"testing"

	"github.com/dockmove/dockmove/protocol"
)

// TestBestOfferFakeReports: a drain sends a container where the most
// memory is left once it and what is already moving there have arrived,
// then where the most disk is free; on a tie, to the first destination
// named. The checks' reports are made up.
func TestBestOfferFakeReports(t *testing.T) {
	const gib = 1 << 30
	o := func(to string, avail, disk, mem int64) offer {
		return offer{to, &Report{Check: &CheckResult{MemAvailable: avail, DiskFree: disk, Sizes: protocol.Sizes{Memory: mem}}}}
	}
	for _, c := range []struct {
		name     string
		offers   []offer
		inFlight map[string]int64
		want     string
	}{
		{"more memory", []offer{o("a", 4*gib, 9*gib, gib), o("b", 8*gib, 1*gib, gib)}, nil, "b"},
		{"what moves there counts", []offer{o("a", 4*gib, 1, gib), o("b", 8*gib, 1, gib)}, map[string]int64{"b": 5 * gib}, "a"},
		{"then disk", []offer{o("a", 4*gib, 1*gib, gib), o("b", 4*gib, 2*gib, gib)}, nil, "b"},
		{"a tie: the first", []offer{o("a", 4*gib, gib, gib), o("b", 4*gib, gib, gib)}, nil, "a"},
		{"unknown memory: by disk", []offer{o("a", 0, 3*gib, gib), o("b", 0, 5*gib, gib)}, nil, "b"},
	} {
		if got := bestOffer(c.offers, c.inFlight).to; got != c.want {
			t.Errorf("%s: chose %s, want %s", c.name, got, c.want)
		}
	}
}

// TestPickNames: names and patterns choose among the running containers;
// a plain name none has is reported, a pattern that matches none is not.
func TestPickNames(t *testing.T) {
	running := []string{"db", "web-1", "web-2"}
	for _, c := range []struct {
		names, chosen, missing []string
	}{
		{nil, running, nil},
		{[]string{"web-*"}, []string{"web-1", "web-2"}, nil},
		{[]string{"db", "cache", "web-?"}, running, []string{"cache"}},
		{[]string{"cache-*", "cache", "cache"}, nil, []string{"cache"}},
	} {
		chosen, missing, err := pickNames(running, c.names)
		if err != nil || !slices.Equal(chosen, c.chosen) || !slices.Equal(missing, c.missing) {
			t.Errorf("pickNames(%q) = %q, %q, %v; want %q, %q", c.names, chosen, missing, err, c.chosen, c.missing)
		}
	}
	if _, _, err := pickNames(running, []string{"web-["}); err == nil {
		t.Error("a malformed pattern was taken")
	}
}
