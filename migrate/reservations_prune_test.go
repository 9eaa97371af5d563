//go:build linux

package migrate

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/docker"
)

// fakeReservationHost is a Docker with reservations on networks, recording
// removals.
type fakeReservationHost struct {
	list     []docker.Reservation
	networks map[string]docker.NetworkInfo
	removed  []string
	failRm   bool
}

func (f *fakeReservationHost) Reservations(context.Context) ([]docker.Reservation, error) {
	return f.list, nil
}

func (f *fakeReservationHost) Network(_ context.Context, name string) (docker.NetworkInfo, error) {
	info, ok := f.networks[name]
	if !ok {
		return info, docker.ErrNotFound
	}
	return info, nil
}

func (f *fakeReservationHost) Remove(_ context.Context, id string) error {
	if f.failRm {
		return errors.New("dockerd said no")
	}
	f.removed = append(f.removed, id)
	return nil
}

// A reservation goes only when nobody answers for any of its addresses
// (each probed several times); one whose addresses answer, or cannot be
// probed, stays; a dry run removes nothing.
func TestPruneReservationsWithFakeNetwork(t *testing.T) {
	mac := net.HardwareAddr{2, 0x42, 10, 77, 0, 64}
	answers := map[string]int{ // address -> probe that first gets an answer (0: never)
		"10.77.0.64": 1, "10.77.0.65": 0, "10.77.0.66": 0, "fd78::1:66": 3, "10.77.0.67": 0,
	}
	probes := map[string]int{}
	holders := func(ifname string, ip net.IP, _ time.Duration) ([]net.HardwareAddr, error) {
		if ifname != "eth0" {
			t.Fatalf("probed on %s, want the network's parent eth0", ifname)
		}
		if ip.String() == "10.77.0.67" {
			return nil, errors.New("no such device")
		}
		probes[ip.String()]++
		if n := answers[ip.String()]; n > 0 && probes[ip.String()] >= n {
			return []net.HardwareAddr{mac}, nil
		}
		return nil, nil
	}
	list := []docker.Reservation{
		{ID: "used", Network: "lan", IPv4: "10.77.0.64"},
		{ID: "gone", Network: "lan", IPv4: "10.77.0.65"},
		{ID: "v6-used", Network: "lan", IPv4: "10.77.0.66", IPv6: "fd78::1:66"},
		{ID: "unprobed", Network: "lan", IPv4: "10.77.0.67"},
		{ID: "bridge", Network: "br", IPv4: "10.88.0.5"},
	}
	networks := map[string]docker.NetworkInfo{"lan": {Driver: "macvlan", Parent: "eth0"}, "br": {Driver: "bridge"}}
	for _, dry := range []bool{true, false} {
		clear(probes)
		fake := &fakeReservationHost{list: list, networks: networks}
		fates, err := pruneReservations(context.Background(), fake, holders, dry)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]ReservationFate{}
		for _, f := range fates {
			got[f.ID] = f
		}
		if f := got["used"]; f.Removed || f.Unused || !slices.Equal(f.AnsweredBy, []string{mac.String()}) {
			t.Errorf("dry %v: an answered reservation: %+v", dry, f)
		}
		if f := got["gone"]; !f.Unused || f.Removed == dry || f.Error != "" || probes["10.77.0.65"] != pruneProbes {
			t.Errorf("dry %v: a silent reservation: %+v after %d probes, want unused (removed unless dry) after %d", dry, f, probes["10.77.0.65"], pruneProbes)
		}
		if f := got["v6-used"]; f.Removed || len(f.AnsweredBy) != 1 {
			t.Errorf("dry %v: IPv6 answered: %+v", dry, f)
		}
		if f := got["unprobed"]; f.Removed || f.Unused || !strings.Contains(f.Error, "no such device") {
			t.Errorf("dry %v: a probe that failed: %+v", dry, f)
		}
		if f := got["bridge"]; f.Removed || !strings.Contains(f.Error, "no interface of this host's") {
			t.Errorf("dry %v: a bridge network: %+v", dry, f)
		}
		want := []string{"gone"}
		if dry {
			want = nil
		}
		if !slices.Equal(fake.removed, want) {
			t.Errorf("dry %v: removed %v, want %v", dry, fake.removed, want)
		}
	}
	fake := &fakeReservationHost{list: list[1:2], networks: networks, failRm: true}
	fates, _ := pruneReservations(context.Background(), fake, holders, false)
	if len(fates) != 1 || fates[0].Removed || !fates[0].Unused || !strings.Contains(fates[0].Error, "dockerd said no") {
		t.Errorf("a removal that failed: %+v", fates)
	}
}
