package migrate

import (
	"maps"
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

// A network host2 lacks is created under host2's policy: known drivers and
// options only, a shared one on an interface host2 has and in host2's own
// range (never the source's), a bridge as the source defines it.
func TestPlanNetwork(t *testing.T) {
	have := func(name string) bool { return name == "eth1" }
	macvlan := protocol.NetworkDefinition{Driver: "macvlan", Subnet: "10.78.0.0/24", Gateway: "10.78.0.1", IPRange: "10.78.0.64/27",
		Options: map[string]string{"parent": "eth1"}, Labels: map[string]string{"team": "a"}}
	bridge := protocol.NetworkDefinition{Driver: "bridge", Subnet: "10.88.0.0/24", IPRange: "10.88.0.128/25",
		Options: map[string]string{"com.docker.network.bridge.enable_icc": "false"}}
	with := func(d protocol.NetworkDefinition, mod func(*protocol.NetworkDefinition)) protocol.NetworkDefinition {
		d.Options = maps.Clone(d.Options)
		mod(&d)
		return d
	}
	mine := map[string][]string{"lan": {"10.78.0.96/27", "fd78::2:0/112"}}
	for _, c := range []struct {
		name   string
		def    protocol.NetworkDefinition
		ranges map[string][]string
		want   string // "" accepted
		rng    string // the range it gets
	}{
		{"macvlan in this host's range", macvlan, mine, "", "10.78.0.96/27"},
		{"macvlan without a range here", macvlan, nil, "migrate-dst --network-range lan=CIDR", ""},
		{"macvlan, a range outside the subnet", macvlan, map[string][]string{"lan": {"10.79.0.0/27"}}, "this host's own allocation range in its subnet 10.78.0.0/24", ""},
		{"dual-stack macvlan", with(macvlan, func(d *protocol.NetworkDefinition) { d.Subnet6, d.IPRange6 = "fd78::/64", "fd78::1:0/112" }), mine, "", "10.78.0.96/27"},
		{"dual-stack macvlan without an IPv6 range here", with(macvlan, func(d *protocol.NetworkDefinition) { d.Subnet6 = "fd78::/64" }),
			map[string][]string{"lan": {"10.78.0.96/27"}}, "range in its subnet fd78::/64", ""},
		{"macvlan on an interface host2 lacks", with(macvlan, func(d *protocol.NetworkDefinition) { d.Options["parent"] = "eth9" }), mine, `interface "eth9"`, ""},
		{"macvlan making a VLAN", with(macvlan, func(d *protocol.NetworkDefinition) { d.Options["parent"] = "eth1.42" }), mine, `interface "eth1.42"`, ""},
		{"an unknown option", with(macvlan, func(d *protocol.NetworkDefinition) { d.Options["com.example.x"] = "1" }), mine, "options the destination does not create networks with: com.example.x", ""},
		{"bridge as defined", bridge, nil, "", "10.88.0.128/25"},
		{"bridge naming a host interface", with(bridge, func(d *protocol.NetworkDefinition) { d.Options["com.docker.network.bridge.name"] = "eth1" }), nil, "com.docker.network.bridge.name", ""},
		{"overlay", protocol.NetworkDefinition{Driver: "overlay", Subnet: "10.0.9.0/24"}, nil, `network "lan" is a swarm network`, ""},
		{"another driver", protocol.NetworkDefinition{Driver: "weave", Subnet: "10.0.9.0/24"}, nil, "creates only bridge and macvlan", ""},
		{"ipvlan", with(macvlan, func(d *protocol.NetworkDefinition) {
			d.Driver = "ipvlan"
			d.Options = map[string]string{"parent": "eth1"}
		}), mine, "ipvlan driver", ""},
	} {
		got, err := planNetwork("lan", c.def, c.ranges, have)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		case c.want == "" && (got.IPRange != c.rng || got.Subnet != c.def.Subnet || !maps.Equal(got.Labels, c.def.Labels)):
			t.Errorf("%s: planned %+v, want range %s", c.name, got, c.rng)
		}
	}
}

// A source cannot claim, on a network of host2's, an identity a container
// of host2's has there: its address, its MAC, or a name others reach it by;
// host2's own reservation of the address (the container coming home) is
// no clash, and a renumbered network keeps neither address nor MAC.
func TestCheckNeighbours(t *testing.T) {
	n := protocol.NetworkSpec{Name: "lan", Subnet: "10.0.0.0/24", IPv4: "10.0.0.5", MAC: "02:42:0a:00:00:05", Aliases: []string{"api"}}
	for _, c := range []struct {
		name       string
		ep         docker.Endpoint
		renumbered bool
		want       string // "" accepted
	}{
		{"a stranger", docker.Endpoint{Container: "other", IPv4: "10.0.0.9", MAC: "02:42:0a:00:00:09"}, false, ""},
		{"the address taken", docker.Endpoint{Container: "other", IPv4: "10.0.0.5"}, false, "address 10.0.0.5 on network \"lan\" is container other's here"},
		{"the address, renumbered", docker.Endpoint{Container: "other", IPv4: "10.0.0.5"}, true, ""},
		{"the MAC taken", docker.Endpoint{Container: "other", MAC: "02:42:0A:00:00:05"}, false, "MAC 02:42:0a:00:00:05"},
		{"an alias that is a container's name", docker.Endpoint{Container: "api"}, false, `alias "api" on network "lan" is a name of container api here`},
		{"an alias that is another's alias", docker.Endpoint{Container: "db", Aliases: []string{"api"}}, false, `alias "api"`},
		{"the name, another's alias", docker.Endpoint{Container: "db", Aliases: []string{"web"}}, false, `the container's name "web" is an alias of container db`},
		{"this host's reservation", docker.Endpoint{Container: "dockmove-reserve-lan-10.0.0.5", IPv4: "10.0.0.5",
			Labels: map[string]string{"dockmove.reservation": "lan/10.0.0.5"}}, false, ""},
	} {
		err := checkNeighbours(n, "web", c.renumbered, []docker.Endpoint{c.ep})
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// Both agents refuse a container on an ipvlan or an overlay network,
// naming it and the way out; other drivers pass this check.
func TestDriverRefusal(t *testing.T) {
	if why := driverRefusal("lan", "ipvlan"); !strings.Contains(why, `network "lan"`) || !strings.Contains(why, "use macvlan or a bridge") {
		t.Errorf("ipvlan: %q", why)
	}
	if why := driverRefusal("ov", "overlay"); !strings.Contains(why, `network "ov" is a swarm network`) || !strings.Contains(why, "docker network disconnect") {
		t.Errorf("overlay: %q", why)
	}
	for _, d := range []string{"macvlan", "bridge"} {
		if why := driverRefusal("lan", d); why != "" {
			t.Errorf("%s refused: %q", d, why)
		}
	}
}
