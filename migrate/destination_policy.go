package migrate

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// The destination's policy: what it lets a source's container do here,
// whatever the source claims. The source's own refusals (source_inspect.go)
// protect a user from a move that cannot work; these protect the
// destination from a source that lies.

// dockerDefaultCaps is the capability set Docker gives a container that
// asks for nothing more: adding any of them changes nothing.
var dockerDefaultCaps = []string{
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

var capNamePattern = regexp.MustCompile(`^[A-Z_]{2,32}$`)

// normalCap spells a capability as Docker's lists do: upper case, without
// the CAP_ prefix ("cap_sys_admin" and "SYS_ADMIN" are the same).
func normalCap(c string) string {
	return strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_")
}

// parseAllowedCaps checks the capabilities an operator allows beyond
// Docker's default set ("ALL" allows every one).
func parseAllowedCaps(caps []string) ([]string, error) {
	var out []string
	for _, c := range caps {
		n := normalCap(c)
		if !capNamePattern.MatchString(n) {
			return nil, fmt.Errorf("migrate: invalid capability %q", c)
		}
		out = append(out, n)
	}
	return out, nil
}

// checkCapabilities refuses a container that adds capabilities outside
// Docker's default set and the ones this destination allows, naming every
// one. Dropping capabilities is always allowed.
func checkCapabilities(add, allowed []string) error {
	if slices.Contains(allowed, "ALL") {
		return nil
	}
	var refused []string
	for _, c := range add {
		n := normalCap(c)
		if !slices.Contains(dockerDefaultCaps, n) && !slices.Contains(allowed, n) && !slices.Contains(refused, n) {
			refused = append(refused, n)
		}
	}
	if len(refused) == 0 {
		return nil
	}
	return fmt.Errorf("the container adds capabilities this destination does not allow: %s "+
		"(a destination allows Docker's default set; migrate-dst --allow-cap %s widens it, if you trust the source with them)",
		strings.Join(refused, ", "), strings.Join(refused, ","))
}
