package migrate

import (
	"net"
	"strings"
	"testing"

	"github.com/dockmove/dockmove/internal/docker"
)

func TestParsePortRanges(t *testing.T) {
	r, err := parsePortRanges("80, 443,8000-8010")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[int]bool{80: true, 443: true, 8000: true, 8010: true, 81: false, 7999: false, 8011: false} {
		if portAllowed(r, p) != want {
			t.Errorf("port %d allowed: %v", p, !want)
		}
	}
	if all, _ := parsePortRanges(""); !portAllowed(all, 1) || !portAllowed(all, 65535) {
		t.Fatal("the default does not allow every port")
	}
	for _, bad := range []string{"0", "70000", "90-80", "http", "80-", "1,,2"} {
		if _, err := parsePortRanges(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// The port checks against real sockets of this host: one held by a
// listener here, one on an address this host lacks, one free; and the
// published ports of a fake list of containers.
func TestHostPortFree(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	all, _ := parsePortRanges("")
	held := []docker.PublishedPort{{Container: "web", IP: "0.0.0.0", Port: 18080, Proto: "tcp"}}
	for _, c := range []struct {
		b    docker.PortBinding
		port int
		want string // "" free
	}{
		{docker.PortBinding{ContainerPort: "7000/tcp", HostIP: "127.0.0.1"}, taken, "in use by a process"},
		{docker.PortBinding{ContainerPort: "7000/tcp"}, taken, "in use by a process"},
		{docker.PortBinding{ContainerPort: "7000/udp", HostIP: "127.0.0.1"}, taken, ""},
		{docker.PortBinding{ContainerPort: "7000/tcp", HostIP: "192.0.2.1"}, 18081, "192.0.2.1 is not an address of the destination"},
		{docker.PortBinding{ContainerPort: "7000/tcp", HostIP: "127.0.0.1"}, 18080, "published by container web"},
		{docker.PortBinding{ContainerPort: "7000/udp"}, 18080, ""},
	} {
		err := hostPortFree(c.b, c.port, all, held)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%v port %d: got %v, want %q", c.b, c.port, err, c.want)
		}
	}
	only80, _ := parsePortRanges("80")
	if err := hostPortFree(docker.PortBinding{ContainerPort: "7000/tcp"}, 8080, only80, nil); err == nil || !strings.Contains(err.Error(), "--host-ports") {
		t.Errorf("a port outside the policy: %v", err)
	}
}
