//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dockmove/dockmove/internal/lab"
)

// A LinkProfile shapes the lab's link the way a deployment's would be: the
// hosts' eth0 (the agents' session, and the containers' macvlan traffic,
// which leaves through it) sends at most Bits per second, through a token
// bucket (tc tbf). Only the rate: this machine's kernel has no netem
// (CONFIG_NET_SCH_NETEM is not set), so no delay can be added; the round
// trip stays the veth's (0.05-0.1 ms here, a LAN's is about 0.2 ms).
type LinkProfile struct {
	Name string `json:"name"`
	Bits int64  `json:"bits_per_sec"`
}

// LinkProfiles are the profiles the bench knows, by name; "" is the lab's
// veth as it is (no shaping).
var LinkProfiles = []LinkProfile{
	{Name: "10gbit", Bits: 10e9},
	{Name: "1gbit", Bits: 1e9},
}

// tbfArgs are tc's arguments for p's token bucket: a burst of 4 ms at the
// rate (at least 64 KiB, one segmentation-offloaded packet), and up to
// 20 ms of queue before the bucket drops.
func (p LinkProfile) tbfArgs() []string {
	burst := max(p.Bits/8/250, 64<<10)
	return []string{"tbf", "rate", strconv.FormatInt(p.Bits, 10) + "bit", "burst", strconv.FormatInt(burst, 10), "latency", "20ms"}
}

// linkProfile finds a profile by name ("" or "veth": none).
func linkProfile(name string) (*LinkProfile, error) {
	if name == "" || name == "veth" {
		return nil, nil
	}
	i := slices.IndexFunc(LinkProfiles, func(p LinkProfile) bool { return p.Name == name })
	if i < 0 {
		names := make([]string, len(LinkProfiles))
		for j, p := range LinkProfiles {
			names[j] = p.Name
		}
		return nil, fmt.Errorf("bench: unknown link profile %q (have veth, %s)", name, strings.Join(names, ", "))
	}
	return &LinkProfiles[i], nil
}

// shape applies p to the eth0 of every host (its egress queue) and
// returns what undoes it. A nil p shapes nothing.
func shape(ctx context.Context, p *LinkProfile, hosts ...lab.Host) (undo func(), err error) {
	var shaped []lab.Host
	undo = func() {
		for _, h := range shaped {
			h.Command(context.Background(), "tc", "qdisc", "del", "dev", "eth0", "root").Run()
		}
	}
	if p == nil {
		return undo, nil
	}
	for _, h := range hosts {
		out, err := h.Command(ctx, "tc", append([]string{"qdisc", "replace", "dev", "eth0", "root"}, p.tbfArgs()...)...).CombinedOutput()
		if err != nil {
			undo()
			return func() {}, fmt.Errorf("bench: shape %s's eth0 to %s: %v: %s", h.Name, p.Name, err, out)
		}
		shaped = append(shaped, h)
	}
	return undo, nil
}

// errShaped: a host's eth0 already has a root queueing discipline other
// than the kernel's default, so the bench would not know what it measures.
var errShaped = errors.New("bench: the link is already shaped")

// checkUnshaped refuses hosts whose eth0 someone shaped (a bench killed
// while shaping leaves it so; `tc qdisc del dev eth0 root` in the host's
// namespace clears it).
func checkUnshaped(ctx context.Context, hosts ...lab.Host) error {
	for _, h := range hosts {
		out, err := h.Command(ctx, "tc", "qdisc", "show", "dev", "eth0", "root").CombinedOutput()
		if err != nil {
			return fmt.Errorf("bench: %s's eth0: %v: %s", h.Name, err, out)
		}
		if strings.Contains(string(out), "netem") || strings.Contains(string(out), "tbf") {
			return fmt.Errorf("%w: %s: %s", errShaped, h.Name, strings.TrimSpace(string(out)))
		}
	}
	return nil
}
