package lazypages

import (
	"testing"

	"github.com/dockmove/dockmove/protocol"
)

func TestParseSummary(t *testing.T) {
	want := protocol.PostCopyStats{Faults: 812, Queued: 40, Zero: 3, FaultPages: 769, BackgroundPages: 64768}
	for _, tc := range []struct {
		name string
		out  string
		ok   bool
	}{
		{"the line", "lazy-pages: faults 812 queued 40 zero 3 fault-pages 769 background-pages 64768\n", true},
		{"among other output", "something\nlazy-pages: faults 812 queued 40 zero 3 fault-pages 769 background-pages 64768\n", true},
		{"keys in another order", "lazy-pages: zero 3 faults 812 background-pages 64768 queued 40 fault-pages 769", true},
		{"nothing (stock CRIU)", "", false},
		{"a key missing", "lazy-pages: faults 812 queued 40 zero 3 fault-pages 769\n", false},
		{"a key twice", "lazy-pages: faults 812 faults 40 zero 3 fault-pages 769 background-pages 1\n", false},
		{"an unknown key", "lazy-pages: faults 812 queued 40 zero 3 fault-pages 769 pages 64768\n", false},
		{"not a number", "lazy-pages: faults many queued 40 zero 3 fault-pages 769 background-pages 64768\n", false},
		{"negative", "lazy-pages: faults 812 queued -40 zero 3 fault-pages 769 background-pages 64768\n", false},
		{"more queued than faults", "lazy-pages: faults 8 queued 40 zero 3 fault-pages 1 background-pages 64768\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseSummary([]byte(tc.out))
			if ok != tc.ok || (ok && got != want) {
				t.Fatalf("ParseSummary(%q) = %+v, %v; want %+v, %v", tc.out, got, ok, want, tc.ok)
			}
		})
	}
}
