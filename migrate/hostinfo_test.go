//go:build linux

package migrate

import (
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
