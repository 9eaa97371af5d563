package migrate

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/netrewire"
	"github.com/dockmove/dockmove/protocol"
)

func netSpec(name, ip, iface string) protocol.NetworkSpec {
	return protocol.NetworkSpec{Name: name, Subnet: "10.0.0.0/8", IPv4: ip, MAC: derivedMAC(ip), Interface: iface}
}

// The source lists networks in the order of the container's interfaces,
// named from what the container holds (its address, else its MAC).
func TestNameInterfacesOrdersByTheContainersOwn(t *testing.T) {
	link := func(iface, mac, ip string) netrewire.Announcement {
		hw, _ := net.ParseMAC(mac)
		return netrewire.Announcement{Interface: iface, MAC: hw, IP: net.ParseIP(ip)}
	}
	nets := []protocol.NetworkSpec{netSpec("a", "10.1.0.2", ""), netSpec("b", "10.2.0.2", ""), netSpec("c", "10.3.0.2", ""), netSpec("d", "10.4.0.2", "")}
	nets[2].IPv4 = "10.3.0.9" // found by its MAC only
	links := []netrewire.Announcement{
		link("eth10", derivedMAC("10.1.0.2"), "10.1.0.2"),
		link("eth2", derivedMAC("10.2.0.2"), "10.2.0.2"),
		link("eth0", derivedMAC("10.3.0.2"), "10.3.0.2"),
	}
	nameInterfaces(nets, links)
	var got []string
	for _, n := range nets {
		got = append(got, n.Name+"="+n.Interface)
	}
	if want := []string{"c=eth0", "b=eth2", "a=eth10", "d="}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// Docker before 28 numbers interfaces in libnetwork's order: networks with
// a way out first (dual-stack before IPv4 only), internal ones last, by
// name within each.
func TestDockerInterfaceOrder(t *testing.T) {
	nets := []protocol.NetworkSpec{netSpec("zeta", "10.0.0.1", ""), netSpec("alpha", "10.0.0.2", ""), netSpec("inner", "10.0.0.3", ""), netSpec("omega", "10.0.0.4", "")}
	infos := []docker.NetworkInfo{{}, {}, {Internal: true}, {IPv6: true}}
	got := dockerInterfaceOrder(nets, infos)
	if want := []string{"eth2", "eth1", "eth3", "eth0"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// The destination refuses, before anything is frozen, interfaces its Docker
// would name otherwise and MACs it cannot set; Docker 28 names them.
func TestCheckInterfaces(t *testing.T) {
	two := []docker.NetworkInfo{{}, {}}
	inOrder := []protocol.NetworkSpec{netSpec("a", "10.1.0.2", "eth0"), netSpec("b", "10.2.0.2", "eth1")}
	swapped := []protocol.NetworkSpec{netSpec("b", "10.2.0.2", "eth0"), netSpec("a", "10.1.0.2", "eth1")}
	ownMAC := slices.Clone(inOrder)
	ownMAC[1].MAC = "02:00:00:00:00:01"
	for _, c := range []struct {
		name     string
		api      string
		nets     []protocol.NetworkSpec
		renumber map[string]bool
		want     string // "" accepted
	}{
		{"20.10 in its own order", "1.41", inOrder, nil, ""},
		{"20.10 swapped", "1.41", swapped, nil, "would attach the container as eth0=a, eth1=b, not as on the source (eth0=b, eth1=a)"},
		{"Docker 25 swapped", "1.44", swapped, nil, "names interfaces itself"},
		{"Docker 28 names them", "1.48", swapped, nil, ""},
		{"20.10, a second network's own MAC", "1.41", ownMAC, nil, `network "b": Docker here (API 1.41) sets the MAC of the container's first network only`},
		{"20.10, a second network renumbered", "1.41", ownMAC, map[string]bool{"b": true}, ""},
		{"Docker 25 sets each MAC", "1.44", ownMAC, nil, ""},
		{"one network", "1.41", inOrder[1:], nil, ""},
	} {
		err := checkInterfaces(c.api, c.nets, two[:len(c.nets)], c.renumber)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// After the restore, each network's interface must have the source's name
// and, where the address was kept, its MAC.
func TestMatchInterfaces(t *testing.T) {
	nets := []protocol.NetworkSpec{netSpec("a", "10.1.0.2", "eth0"), netSpec("b", "10.2.0.2", "eth1")}
	addrs := map[string]string{"a": "10.1.0.2", "b": "10.2.0.2"}
	link := func(iface, ip string) netrewire.Announcement {
		hw, _ := net.ParseMAC(derivedMAC(ip))
		return netrewire.Announcement{Interface: iface, MAC: hw, IP: net.ParseIP(ip)}
	}
	same := []netrewire.Announcement{link("eth0", "10.1.0.2"), link("eth1", "10.2.0.2")}
	if err := matchInterfaces(nets, addrs, nil, same); err != nil {
		t.Fatalf("the same interfaces: %v", err)
	}
	swapped := []netrewire.Announcement{link("eth1", "10.1.0.2"), link("eth0", "10.2.0.2")}
	if err := matchInterfaces(nets, addrs, nil, swapped); err == nil || !strings.Contains(err.Error(), `network "a" came up as eth1, not eth0`) {
		t.Fatalf("swapped interfaces: %v", err)
	}
	otherMAC := []netrewire.Announcement{link("eth0", "10.1.0.2"), link("eth1", "10.2.0.2")}
	otherMAC[1].MAC = net.HardwareAddr{2, 0, 0, 0, 0, 9}
	if err := matchInterfaces(nets, addrs, nil, otherMAC); err == nil || !strings.Contains(err.Error(), "has MAC 02:00:00:00:00:09") {
		t.Fatalf("another MAC: %v", err)
	}
	if err := matchInterfaces(nets, addrs, map[string]bool{"b": true}, otherMAC); err != nil {
		t.Fatalf("another MAC on a renumbered network: %v", err)
	}
	if err := matchInterfaces(nets, addrs, nil, same[:1]); err == nil || !strings.Contains(err.Error(), `network "b": no interface holds`) {
		t.Fatalf("a missing interface: %v", err)
	}
}
