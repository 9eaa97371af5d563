package docker

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const publishing = `{"Memory":1,"PortBindings":{"7000/tcp":[{"HostIp":"","HostPort":"18080"},{"HostIp":"127.0.0.1","HostPort":"18081"}],` +
	`"53/udp":[{"HostIp":"::1","HostPort":"5353"}],"9000/tcp":[{"HostIp":"","HostPort":""}],"8000/tcp":[{"HostIp":"","HostPort":"8000-8002"}]}}`

func TestPortBindingsListsEveryHostPort(t *testing.T) {
	got, names := bindings(t, json.RawMessage(publishing))
	want := []string{"(any)->9000/tcp", "127.0.0.1:18081->7000/tcp", "18080->7000/tcp", "8000-8002->8000/tcp", "[::1]:5353->53/udp"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("got %q, want %q", names, want)
	}
	if first, last, err := got[3].HostPorts(); err != nil || first != 8000 || last != 8002 {
		t.Fatalf("range: %d-%d %v", first, last, err)
	}
	if first, _, err := got[0].HostPorts(); err != nil || first != 0 {
		t.Fatalf("Docker's choice: %d %v", first, err)
	}
	if got[4].Proto() != "udp" {
		t.Fatalf("proto %q", got[4].Proto())
	}
}

func TestRemapPortsMovesOnlyTheNamedHostPorts(t *testing.T) {
	out, err := RemapPorts(json.RawMessage(publishing), map[string]string{"18080": "28080", "127.0.0.1:18081": "10.0.0.2:28081"})
	if err != nil {
		t.Fatal(err)
	}
	_, names := bindings(t, out)
	want := []string{"(any)->9000/tcp", "10.0.0.2:28081->7000/tcp", "28080->7000/tcp", "8000-8002->8000/tcp", "[::1]:5353->53/udp"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("got %q, want %q", names, want)
	}
	if !strings.Contains(string(out), `"Memory":1`) {
		t.Fatalf("other settings lost: %s", out)
	}
	for remap, want := range map[string]string{
		"18082=28082":       "publishes no host port 18082",
		"10.0.0.9:18080=1":  "publishes no host port 10.0.0.9:18080",
		"18080=99999":       "invalid port",
		"host:18080=28080":  "invalid address",
		"18080=28080=28081": "invalid port",
	} {
		from, to, _ := strings.Cut(remap, "=")
		if _, err := RemapPorts(json.RawMessage(publishing), map[string]string{from: to}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", remap, err, want)
		}
	}
}

// bindings lists what raw publishes, and its names.
func bindings(t *testing.T, raw json.RawMessage) ([]PortBinding, []string) {
	t.Helper()
	got, err := PortBindings(raw)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range got {
		names = append(names, b.String())
	}
	return got, names
}
