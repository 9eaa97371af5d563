//go:build linux

package migrate

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/netrewire"
)

// A reservation (package reserve) holds a moved container's address on
// its home until someone removes it: the home cannot know when the
// container is gone for good from another host. Left alone, reservations
// fill the home's range (a /27 holds 32) as containers leave and are later
// removed elsewhere. PruneReservations asks the network instead: a
// reservation whose addresses nobody answers for (an ARP probe, for IPv6 a
// duplicate address detection's solicitation, from this host's parent
// interface of the network) holds them for nobody, and goes. A moved
// container that is stopped elsewhere answers nothing either: prune when
// the containers that moved away run, or are gone.

// ReservationFate is what PruneReservations found of a reservation.
type ReservationFate struct {
	docker.Reservation
	// AnsweredBy are the MACs that answered for its addresses: someone
	// uses them, and it stays.
	AnsweredBy []string `json:"answered_by,omitempty"`
	// Unused: nobody answered for its addresses.
	Unused bool `json:"unused"`
	// Removed: unused, and it went (not in a dry run).
	Removed bool `json:"removed"`
	// Error, if its addresses could not be probed (it stays).
	Error string `json:"error,omitempty"`
}

// reservationHost is the Docker that PruneReservations works on.
type reservationHost interface {
	Reservations(ctx context.Context) ([]docker.Reservation, error)
	Network(ctx context.Context, name string) (docker.NetworkInfo, error)
	Remove(ctx context.Context, id string) error
}

// holdersFunc probes who answers for ip on the interface (netrewire.Holders).
type holdersFunc func(ifname string, ip net.IP, wait time.Duration) ([]net.HardwareAddr, error)

// pruneProbes and pruneWait: each address is probed this many times, each
// answer awaited this long, before nobody is taken to hold it.
const (
	pruneProbes = 3
	pruneWait   = 300 * time.Millisecond
)

// PruneReservations removes this host's reservations whose addresses
// nobody answers for on their networks (dryRun: says which would go).
func PruneReservations(ctx context.Context, dk *docker.Client, dryRun bool) ([]ReservationFate, error) {
	return pruneReservations(ctx, dk, netrewire.Holders, dryRun)
}

func pruneReservations(ctx context.Context, dk reservationHost, holders holdersFunc, dryRun bool) ([]ReservationFate, error) {
	list, err := dk.Reservations(ctx)
	if err != nil {
		return nil, err
	}
	fates := make([]ReservationFate, 0, len(list))
	for _, r := range list {
		f := ReservationFate{Reservation: r}
		f.AnsweredBy, err = answering(ctx, dk, holders, r)
		f.Unused = err == nil && len(f.AnsweredBy) == 0
		switch {
		case err != nil:
			f.Error = err.Error()
		case !f.Unused, dryRun:
		default:
			if err := dk.Remove(ctx, r.ID); err != nil {
				f.Error = fmt.Sprintf("remove the reservation: %v", err)
			} else {
				f.Removed = true
			}
		}
		fates = append(fates, f)
	}
	return fates, nil
}

// answering lists who answers for reservation r's addresses on its
// network.
func answering(ctx context.Context, dk reservationHost, holders holdersFunc, r docker.Reservation) ([]string, error) {
	info, err := dk.Network(ctx, r.Network)
	if err != nil {
		return nil, err
	}
	if !sharedLink(info.Driver) || info.Parent == "" {
		return nil, fmt.Errorf("network %q (%s) has no interface of this host's to probe its addresses on", r.Network, info.Driver)
	}
	seen := map[string]bool{}
	var macs []string
	for _, a := range []string{r.IPv4, r.IPv6} {
		ip := net.ParseIP(a)
		if ip == nil {
			continue
		}
		for range pruneProbes {
			hw, err := holders(info.Parent, ip, pruneWait)
			if err != nil {
				return nil, fmt.Errorf("probe %s on %s: %w", a, info.Parent, err)
			}
			for _, h := range hw {
				if !seen[h.String()] {
					seen[h.String()] = true
					macs = append(macs, h.String())
				}
			}
			if len(hw) > 0 || ctx.Err() != nil {
				break
			}
		}
	}
	return macs, ctx.Err()
}
