package migrate

import (
	"strings"
	"testing"
)

func TestDestinationCapabilityPolicy(t *testing.T) {
	for _, c := range []struct {
		name         string
		add, allowed []string
		refused      []string // named in the refusal; nil: accepted
	}{
		{"nothing added", nil, nil, nil},
		{"docker defaults", []string{"CHOWN", "cap_net_bind_service", "CAP_KILL"}, nil, nil},
		{"all", []string{"ALL"}, nil, []string{"ALL"}},
		{"escape capabilities", []string{"SYS_ADMIN", "cap_sys_module", "DAC_READ_SEARCH", "SYS_PTRACE"}, nil, []string{"SYS_ADMIN", "SYS_MODULE", "DAC_READ_SEARCH", "SYS_PTRACE"}},
		{"allowed by the operator", []string{"NET_ADMIN", "CAP_SYS_TIME"}, []string{"NET_ADMIN", "SYS_TIME"}, nil},
		{"partly allowed", []string{"NET_ADMIN", "SYS_ADMIN"}, []string{"NET_ADMIN"}, []string{"SYS_ADMIN"}},
		{"ALL needs ALL", []string{"ALL"}, []string{"SYS_ADMIN"}, []string{"ALL"}},
		{"operator allows everything", []string{"ALL", "SYS_MODULE"}, []string{"ALL"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			allowed, err := parseAllowedCaps(c.allowed)
			if err != nil {
				t.Fatal(err)
			}
			err = checkCapabilities(c.add, allowed)
			if (err == nil) != (c.refused == nil) {
				t.Fatalf("checkCapabilities(%v, %v) = %v", c.add, allowed, err)
			}
			for _, r := range c.refused {
				if !strings.Contains(err.Error(), r) {
					t.Errorf("refusal does not name %s: %v", r, err)
				}
			}
		})
	}
	if _, err := parseAllowedCaps([]string{"SYS ADMIN"}); err == nil {
		t.Error("a malformed capability was accepted in the allow-list")
	}
}
