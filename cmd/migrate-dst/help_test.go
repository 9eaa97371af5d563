//go:build linux

package main

import (
	"bytes"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/dockmove/dockmove/migrate"
)

// commandNames are migrate-dst's commands, spelled here again so that a
// command missing from the help fails.
var commandNames = []string{"serve", "certs", "install-runtime", "uninstall-runtime", "status", "help"}

// runDst runs migrate-dst's command line args in the test's process.
func runDst(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(append([]string{"migrate-dst"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelpListsSubcommands(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		usage string
	}{
		{"long", []string{"--help"}, "usage: migrate-dst [serve]"},
		{"short", []string{"-h"}, "usage: migrate-dst [serve]"},
		{"help command", []string{"help"}, "usage: migrate-dst [serve]"},
		{"serve", []string{"serve", "--help"}, "usage: migrate-dst [serve]"},
		{"after a flag", []string{"--listen", ":7071", "--help"}, "usage: migrate-dst [serve]"},
		{"certs", []string{"certs", "--help"}, "usage: migrate-dst certs"},
		{"certs short", []string{"certs", "-h"}, "usage: migrate-dst certs"},
		{"install-runtime", []string{"install-runtime", "--help"}, "usage: migrate-dst install-runtime"},
		{"uninstall-runtime", []string{"uninstall-runtime", "--help"}, "usage: migrate-dst uninstall-runtime"},
		{"status", []string{"status", "-h"}, "usage: migrate-dst status"},
		{"help certs", []string{"help", "certs"}, "usage: migrate-dst certs"},
		{"help help", []string{"help", "help"}, "usage: migrate-dst help"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runDst(t, tc.args...)
			if code != 0 || errOut != "" {
				t.Fatalf("%q: exit %d, stderr %q", tc.args, code, errOut)
			}
			if !strings.HasPrefix(out, tc.usage) {
				t.Fatalf("%q: help starts %q, want %q", tc.args, firstLine(out), tc.usage)
			}
			commands := section(out, "commands:")
			for _, name := range commandNames {
				if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(name) + `  +\S`).MatchString(commands) {
					t.Errorf("%q: the commands list lacks %s with its summary:\n%s", tc.args, name, commands)
				}
			}
			if section(out, "examples:") == "" {
				t.Errorf("%q: no examples:\n%s", tc.args, out)
			}
			if tc.name != "help help" && !strings.Contains(section(out, "flags:"), "--") {
				t.Errorf("%q: no flags:\n%s", tc.args, out)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, errOut := runDst(t, "--version")
	want := "migrate-dst dockmove " + migrate.Version + " (" + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if code != 0 || out != want || errOut != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want 0, %q", code, out, errOut, want)
	}
}

// TestUsageErrorsExit2: a command line migrate-dst cannot run exits 2 with
// one line saying why and a hint to the help, not the whole help.
func TestUsageErrorsExit2(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		hint string
	}{
		{"unknown flag", []string{"--no-such-flag"}, "'migrate-dst --help'"},
		{"unknown shorthand", []string{"-x"}, "'migrate-dst --help'"},
		{"flag without its value", []string{"--listen"}, "'migrate-dst --help'"},
		{"unknown flag of a command", []string{"certs", "--no-such-flag"}, "'migrate-dst certs --help'"},
		{"uninstall takes no --from", []string{"uninstall-runtime", "--from", "x"}, "'migrate-dst uninstall-runtime --help'"},
		{"argument to a command", []string{"status", "extra"}, "'migrate-dst status --help'"},
		{"unknown command", []string{"no-such-command"}, "'migrate-dst --help'"},
		{"help on an unknown command", []string{"help", "no-such-command"}, "'migrate-dst --help'"},
		{"bad network range", []string{"--network-range", "nocidr"}, "'migrate-dst --help'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runDst(t, tc.args...)
			if code != 2 || out != "" {
				t.Fatalf("%q: exit %d, stdout %q; want 2 and nothing", tc.args, code, out)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "migrate-dst: ") || !strings.Contains(lines[1], tc.hint) {
				t.Fatalf("%q: stderr %q; want an error and a hint to %s", tc.args, errOut, tc.hint)
			}
		})
	}
}

// TestFlagHelpHasNoBackquoteTypes: pflag shows a usage string's first
// backquoted words as the flag's value, so "(from `migrate-dst certs`)"
// rendered as "--tls-dir migrate-dst certs". The value shown must be a
// type (string, duration, ...) or a placeholder such as DIR.
func TestFlagHelpHasNoBackquoteTypes(t *testing.T) {
	value := regexp.MustCompile(`^([a-z][a-zA-Z0-9]*|[A-Z][A-Z0-9_]*)?$`)
	for _, name := range commandNames {
		_, out, _ := runDst(t, name, "--help")
		if strings.Contains(out, "`") {
			t.Errorf("%s --help shows a backquote:\n%s", name, out)
		}
		values := flagValues(out)
		if len(values) == 0 && name != "help" {
			t.Errorf("%s --help: no flag lines read:\n%s", name, out)
		}
		for flag, v := range values {
			if !value.MatchString(v) {
				t.Errorf("%s --help: --%s shows its value as %q", name, flag, v)
			}
		}
	}
}

// flagValues reads a help's flag lines ("      --name TYPE   usage") and
// returns each flag's value as shown.
func flagValues(help string) map[string]string {
	values := map[string]string{}
	line := regexp.MustCompile(`^(?:  -\S, |      )--([a-z0-9-]+)(?:\[=[^\]]*\])?(.*)$`)
	for _, l := range strings.Split(section(help, "flags:"), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		v, _, _ := strings.Cut(m[2], "  ")
		values[m[1]] = strings.TrimPrefix(v, " ")
	}
	return values
}

// section returns the lines under heading, up to the next blank line.
func section(help, heading string) string {
	_, rest, ok := strings.Cut(help, "\n"+heading+"\n")
	if !ok {
		return ""
	}
	body, _, _ := strings.Cut(rest, "\n\n")
	return body
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
