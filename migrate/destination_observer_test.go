package migrate

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/dockmove/dockmove/transfer"
)

func TestRefusalReasons(t *testing.T) {
	policy := refuseFor(RefusalPolicy, errors.New("labels this destination refuses: traefik.x"))
	disk := refuseFor(RefusalDisk, errors.New("not enough disk space"))
	for _, tc := range []struct {
		name string
		err  error
		want []RefusalReason
	}{
		{"classed", policy, []RefusalReason{RefusalPolicy}},
		{"classed, then wrapped", fmt.Errorf("preflight: %w", disk), []RefusalReason{RefusalDisk}},
		{"several, each class once", joinRefusals([]error{policy, disk, refuseFor(RefusalPolicy, errors.New("caps"))}),
			[]RefusalReason{RefusalPolicy, RefusalDisk}},
		{"TLS", fmt.Errorf("%w: bad certificate", transfer.ErrAuth), []RefusalReason{RefusalAuth}},
		{"versions", fmt.Errorf("%w: protocol version", transfer.ErrIncompatible), []RefusalReason{RefusalVersion}},
		{"malformed", fmt.Errorf("%w: trailing data", transfer.ErrBadMessage), []RefusalReason{RefusalBadInput}},
		{"unexpected", fmt.Errorf("%w: commit to begin with", transfer.ErrUnexpectedMessage), []RefusalReason{RefusalBadInput}},
		{"silent", fmt.Errorf("%w: the peer sent nothing", transfer.ErrIdle), []RefusalReason{RefusalBadInput}},
		// A peer's own words never become a class.
		{"unclassed", errors.New("policy: disk: auth"), []RefusalReason{RefusalOther}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := refusalReasons(tc.err); !slices.Equal(got, tc.want) {
				t.Fatalf("refusalReasons(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// Classing a reason keeps its text: the source is told the same.
func TestRefusalKeepsItsText(t *testing.T) {
	a, b := errors.New("a container named \"web\" already exists"), errors.New("not enough disk space")
	if err := refuseFor(RefusalConflict, a); err.Error() != a.Error() || !errors.Is(err, a) {
		t.Fatalf("refuseFor: %q, want %q unwrapping to it", err, a)
	}
	if refuseFor(RefusalConflict, nil) != nil {
		t.Fatal("refuseFor(nil) is not nil")
	}
	joined := joinRefusals([]error{refuseFor(RefusalConflict, a), refuseFor(RefusalDisk, b)})
	if want := a.Error() + "; " + b.Error(); joined.Error() != want {
		t.Fatalf("joinRefusals: %q, want %q", joined, want)
	}
	if joinRefusals(nil) != nil {
		t.Fatal("joinRefusals(nil) is not nil")
	}
}
