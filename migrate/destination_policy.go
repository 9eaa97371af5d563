package migrate

import (
	"fmt"
	"maps"
	"path"
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

// ownLabel reports whether a label key is in dockmove's own namespaces:
// the bookkeeping a host keeps on its containers (the migration that made
// one, the reservation of an address). A host sets them; a source never
// sends them, since host2 acts on them (a container labelled as a
// reservation would be taken for one, and removed when the address's
// container came home).
func ownLabel(key string) bool {
	return strings.HasPrefix(key, "org.dockmove.") || strings.HasPrefix(key, "dockmove.")
}

// withoutOwnLabels is labels without dockmove's own: a container that
// came here by a migration carries that migration's label, which says
// nothing on the next host.
func withoutOwnLabels(labels map[string]string) map[string]string {
	var out map[string]string
	for k, v := range labels {
		if ownLabel(k) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

// parseLabelPatterns checks label key patterns (path.Match's syntax, e.g.
// "traefik.*").
func parseLabelPatterns(patterns []string) error {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return fmt.Errorf("migrate: invalid label pattern %q (want a key or a pattern such as traefik.*)", p)
		}
	}
	return nil
}

// matchesLabel reports whether key matches one of patterns (checked by
// parseLabelPatterns).
func matchesLabel(key string, patterns []string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool {
		ok, _ := path.Match(p, key)
		return ok
	})
}

// checkLabels refuses a container whose labels this destination does not
// take, naming each: dockmove's own, those matching a deny pattern, and,
// when allow patterns are given, those matching none. Labels matter on a
// host: reverse proxies route by them (traefik.*), orchestration tools
// manage by them.
func checkLabels(labels map[string]string, allow, deny []string) error {
	var own, denied, unlisted []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		switch {
		case ownLabel(k):
			own = append(own, k)
		case matchesLabel(k, deny):
			denied = append(denied, k)
		case len(allow) > 0 && !matchesLabel(k, allow):
			unlisted = append(unlisted, k)
		}
	}
	var why []string
	if len(own) > 0 {
		why = append(why, fmt.Sprintf("the container carries dockmove's own labels %s, which only a host sets on its containers: the source is not a dockmove agent, or a faulty one",
			strings.Join(own, ", ")))
	}
	if len(denied) > 0 {
		why = append(why, fmt.Sprintf("the container has labels this destination refuses (migrate-dst --deny-label %s): %s",
			strings.Join(deny, ","), strings.Join(denied, ", ")))
	}
	if len(unlisted) > 0 {
		why = append(why, fmt.Sprintf("the container has labels outside those this destination allows (migrate-dst --allow-label %s): %s",
			strings.Join(allow, ","), strings.Join(unlisted, ", ")))
	}
	return joinReasons(why)
}
