//go:build linux

package migrate

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dockmove/dockmove/transfer"
)

func TestCgroupVersionsMustMatch(t *testing.T) {
	v1 := transfer.HostInfo{Docker: "20.10.24", Cgroup: 1}
	v2 := transfer.HostInfo{Docker: "28.5.2", Cgroup: 2}
	unknown := transfer.HostInfo{Docker: "28.5.2"}
	for _, c := range []struct {
		src, dst transfer.HostInfo
		ok       bool
	}{
		{v1, v1, true}, {v2, v2, true}, {v1, unknown, true}, {unknown, v2, true},
		{v1, v2, false}, {v2, v1, false},
	} {
		err := checkCgroups(c.src, c.dst)
		if (err == nil) != c.ok {
			t.Errorf("%v -> %v: %v", c.src, c.dst, err)
		}
		if err != nil && !(strings.Contains(err.Error(), "Docker 20.10.24") && strings.Contains(err.Error(), "Docker 28.5.2")) {
			t.Errorf("the refusal does not name both hosts' versions: %v", err)
		}
	}
}

func TestHostStackShowsCRIU(t *testing.T) {
	h := hostStack(transfer.HostInfo{Docker: "28.5.2", Kernel: "6.18.44", Cgroup: 1}, transfer.CRIUInfo{Version: 40201})
	if got, want := h.String(), "Docker 28.5.2, kernel 6.18.44, cgroup v1, CRIU 4.2.1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"docker":"28.5.2","kernel":"6.18.44","cgroup":1,"criu":"4.2.1"}`; got != want {
		t.Errorf("JSON %s, want %s", got, want)
	}
	if none := hostStack(transfer.HostInfo{}, transfer.CRIUInfo{}); none.CRIU != "" {
		t.Errorf("no CRIU shown as %q", none.CRIU)
	}
}
