//go:build linux

package main

import (
	"bytes"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/dockmove/dockmove/internal/cli/clitest"
	"github.com/dockmove/dockmove/migrate"
)

// commandNames are migrate-dst's commands, spelled here again so that a
// command missing from the help fails.
var commandNames = []string{"serve", "certs", "install-runtime", "uninstall-runtime", "install", "uninstall", "generate", "status", "help"}

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
				t.Fatalf("%q: help starts %q, want %q", tc.args, clitest.FirstLine(out), tc.usage)
			}
			commands := clitest.Section(out, "commands:")
			for _, name := range commandNames {
				if !regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(name) + `  +\S`).MatchString(commands) {
					t.Errorf("%q: the commands list lacks %s with its summary:\n%s", tc.args, name, commands)
				}
			}
			if clitest.Section(out, "examples:") == "" {
				t.Errorf("%q: no examples:\n%s", tc.args, out)
			}
			if tc.name != "help help" && !strings.Contains(clitest.Section(out, "flags:"), "--") {
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
	for _, name := range commandNames {
		_, out, _ := runDst(t, name, "--help")
		clitest.CheckFlagHelp(t, name, out)
	}
}
