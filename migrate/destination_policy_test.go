package migrate

import (
	"maps"
	"strings"
	"testing"

	"github.com/dockmove/dockmove/internal/reserve"
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

func TestDestinationLabelPolicy(t *testing.T) {
	labels := map[string]string{
		"traefik.http.routers.web.rule": "Host(`bank.example`)",
		"com.example.team":              "payments",
		"version":                       "3",
	}
	for _, c := range []struct {
		name        string
		labels      map[string]string
		allow, deny []string
		refused     []string // named in the refusal; nil: accepted
	}{
		{"no policy", labels, nil, nil, nil},
		{"no labels", nil, []string{"com.example.*"}, []string{"*"}, nil},
		{"denied by pattern", labels, nil, []string{"traefik.*"}, []string{"--deny-label traefik.*", "traefik.http.routers.web.rule"}},
		{"denied by key", labels, nil, []string{"version"}, []string{"version"}},
		{"allow-list", labels, []string{"com.example.*", "version"}, nil, []string{"--allow-label", "traefik.http.routers.web.rule"}},
		{"deny wins over allow", labels, []string{"*"}, []string{"com.example.team"}, []string{"com.example.team"}},
		{"dockmove's migration label", map[string]string{LabelMigration: "m-1"}, nil, nil, []string{LabelMigration, "only a host sets"}},
		{"a reservation's label", map[string]string{reserve.Label: "dmlab/10.77.0.70"}, []string{"*"}, nil, []string{reserve.Label}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := parseLabelPatterns(append(c.allow, c.deny...)); err != nil {
				t.Fatal(err)
			}
			err := checkLabels(c.labels, c.allow, c.deny)
			if (err == nil) != (c.refused == nil) {
				t.Fatalf("checkLabels(%v, %v, %v) = %v", c.labels, c.allow, c.deny, err)
			}
			for _, r := range c.refused {
				if !strings.Contains(err.Error(), r) {
					t.Errorf("refusal does not name %s: %v", r, err)
				}
			}
		})
	}
	for _, bad := range []string{"", "traefik.[", "a[b"} {
		if err := parseLabelPatterns([]string{bad}); err == nil {
			t.Errorf("pattern %q accepted", bad)
		}
	}
}

// TestOwnLabelsStayHome: the labels a host keeps on a container (the
// migration that brought it) are not sent on with it; the others are.
func TestOwnLabelsStayHome(t *testing.T) {
	got := withoutOwnLabels(map[string]string{LabelMigration: "m-1", reserve.Label: "x/1.2.3.4", "dockmove.other": "1", "app": "web", "org.dockmovex": "kept"})
	if want := map[string]string{"app": "web", "org.dockmovex": "kept"}; !maps.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if withoutOwnLabels(map[string]string{LabelMigration: "m-1"}) != nil {
		t.Fatal("only dockmove's labels: want none")
	}
}
