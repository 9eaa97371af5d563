package migrate

import (
	"math"
	"strings"
	"testing"
)

// fakeDisks is an fsInfo over invented file systems (pure logic test).
func fakeDisks(devs map[string]uint64, free map[uint64]int64) fsInfo {
	return func(dir string) (uint64, int64, error) { return devs[dir], free[devs[dir]], nil }
}

func TestCheckDiskSumsPerFileSystemWithFakeDisks(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name  string
		devs  map[string]uint64
		free  map[uint64]int64
		needs []diskNeed
		want  string
	}{
		{"fits", map[string]uint64{"/img": 1, "/docker": 2}, map[uint64]int64{1: 2 * gib, 2: 2 * gib},
			[]diskNeed{{"/img", gib}, {"/docker", gib}}, ""},
		{"same disk sums", map[string]uint64{"/img": 1, "/docker": 1}, map[uint64]int64{1: 2 * gib},
			[]diskNeed{{"/img", gib}, {"/docker", gib}}, "/img and /docker"},
		{"margin counts", map[string]uint64{"/img": 1}, map[uint64]int64{1: gib + diskMargin - 1},
			[]diskNeed{{"/img", gib}}, "not enough disk space"},
		{"announced sizes that would overflow", map[string]uint64{"/img": 1, "/docker": 1}, map[uint64]int64{1: 2 * gib},
			[]diskNeed{{"/img", math.MaxInt64/2 + 1}, {"/docker", math.MaxInt64/2 + 1}}, "not enough disk space"},
		{"separate disks", map[string]uint64{"/img": 1, "/docker": 2}, map[uint64]int64{1: 4 * gib, 2: gib},
			[]diskNeed{{"/img", gib}, {"/docker", gib}}, "/docker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDisk(tt.needs, fakeDisks(tt.devs, tt.free))
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// A stream may carry twice the source's estimate of it plus the slack, and
// a huge estimate saturates instead of wrapping into a small limit.
func TestStreamAllowance(t *testing.T) {
	for _, c := range []struct{ estimate, want int64 }{
		{0, streamSlack},
		{100 << 20, 200<<20 + streamSlack},
		{math.MaxInt64 / 2, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64},
	} {
		if got := allowance(c.estimate); got != c.want {
			t.Errorf("allowance(%d) = %d, want %d", c.estimate, got, c.want)
		}
	}
}
