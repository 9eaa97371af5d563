// Package clitest holds the checks both agents' help tests make on the
// text their commands print.
package clitest

import (
	"regexp"
	"strings"
)

// T is what the checks need of a *testing.T.
type T interface {
	Helper()
	Errorf(format string, args ...any)
}

// flagValue is how a flag's value may show in help: a type (string,
// duration, ...), a placeholder such as DIR, or nothing (a boolean).
var flagValue = regexp.MustCompile(`^([a-z][a-zA-Z0-9]*|[A-Z][A-Z0-9_]*)?$`)

// CheckFlagHelp fails t if command's help shows a backquote or a flag
// whose value is not a type or a placeholder: pflag shows a usage
// string's first backquoted words as the flag's value, so "(from
// `migrate-dst certs`)" rendered as "--tls-dir migrate-dst certs".
// A command other than help must list flags.
func CheckFlagHelp(t T, command, help string) {
	t.Helper()
	if strings.Contains(help, "`") {
		t.Errorf("%s --help shows a backquote:\n%s", command, help)
	}
	values := FlagValues(help)
	if len(values) == 0 && command != "help" {
		t.Errorf("%s --help: no flag lines read:\n%s", command, help)
	}
	for flag, v := range values {
		if !flagValue.MatchString(v) {
			t.Errorf("%s --help: --%s shows its value as %q", command, flag, v)
		}
	}
}

// FlagValues reads a help's flag lines ("      --name TYPE   usage") and
// returns each flag's value as shown.
func FlagValues(help string) map[string]string {
	values := map[string]string{}
	line := regexp.MustCompile(`^(?:  -\S, |      )--([a-z0-9-]+)(?:\[=[^\]]*\])?(.*)$`)
	for _, l := range strings.Split(Section(help, "flags:"), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		v, _, _ := strings.Cut(m[2], "  ")
		values[m[1]] = strings.TrimPrefix(v, " ")
	}
	return values
}

// Section returns the lines under heading, up to the next blank line.
func Section(help, heading string) string {
	_, rest, ok := strings.Cut(help, "\n"+heading+"\n")
	if !ok {
		return ""
	}
	body, _, _ := strings.Cut(rest, "\n\n")
	return body
}

// FirstLine is s up to its first newline.
func FirstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
