//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/dockmove/dockmove/internal/cli/clitest"
	"github.com/dockmove/dockmove/migrate"
)

// commandNames are migrate-src's commands, spelled here again so that a
// command missing from the help fails.
var commandNames = []string{"check", "drain", "status", "install-plugin", "generate", "help"}

// runSrc runs the command line args, args[0] the name migrate-src runs
// as, in the test's process.
func runSrc(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelpListsSubcommands(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent.sock") // the plugin's daemon, without a Docker configuration
	for _, tc := range []struct {
		name  string
		args  []string
		usage string
	}{
		{"long", []string{"migrate-src", "--help"}, "usage: migrate-src --to HOST[:PORT] [flags] CONTAINER"},
		{"short", []string{"migrate-src", "-h"}, "usage: migrate-src --to HOST[:PORT] [flags] CONTAINER"},
		{"help command", []string{"migrate-src", "help"}, "usage: migrate-src --to HOST[:PORT] [flags] CONTAINER"},
		{"amid a migration's flags", []string{"migrate-src", "--to", "host2", "web", "--help"}, "usage: migrate-src --to HOST[:PORT] [flags] CONTAINER"},
		{"check", []string{"migrate-src", "check", "--help"}, "usage: migrate-src check"},
		{"drain", []string{"migrate-src", "drain", "-h"}, "usage: migrate-src drain"},
		{"drain check", []string{"migrate-src", "drain", "check", "--to", "host2", "--help"}, "usage: migrate-src drain"},
		{"status", []string{"migrate-src", "status", "--help"}, "usage: migrate-src status"},
		{"install-plugin", []string{"migrate-src", "install-plugin", "--help"}, "usage: migrate-src install-plugin"},
		{"help drain", []string{"migrate-src", "help", "drain"}, "usage: migrate-src drain"},
		{"help install-plugin", []string{"migrate-src", "help", "install-plugin"}, "usage: migrate-src install-plugin"},
		{"help help", []string{"migrate-src", "help", "help"}, "usage: migrate-src help"},
		{"plugin", []string{"/usr/libexec/docker/cli-plugins/docker-migrate", "migrate", "--help"}, "usage: docker migrate --to HOST[:PORT] [flags] CONTAINER"},
		{"plugin check", []string{"docker-migrate", "--context", "default", "migrate", "check", "-h"}, "usage: docker migrate check"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runSrc(t, tc.args...)
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
	t.Setenv("DOCKER_HOST", "unix:///nonexistent.sock")
	built := " dockmove " + migrate.Version + " (" + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"migrate-src", []string{"migrate-src", "--version"}, "migrate-src" + built},
		{"plugin", []string{"docker-migrate", "migrate", "--version"}, "docker migrate" + built},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runSrc(t, tc.args...)
			if code != 0 || out != tc.want || errOut != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 0, %q", code, out, errOut, tc.want)
			}
		})
	}
}

// TestPluginMetadataNamesTheVersion: the Docker CLI asks a plugin for its
// metadata before it lists or runs it.
func TestPluginMetadataNamesTheVersion(t *testing.T) {
	code, out, errOut := runSrc(t, "docker-migrate", "docker-cli-plugin-metadata")
	var meta map[string]string
	if err := json.Unmarshal([]byte(out), &meta); err != nil || code != 0 || errOut != "" {
		t.Fatalf("exit %d, stdout %q (%v), stderr %q", code, out, err, errOut)
	}
	if meta["SchemaVersion"] != "0.1.0" || meta["Version"] != migrate.Version || meta["ShortDescription"] == "" {
		t.Fatalf("metadata %v", meta)
	}
}

// TestUsageErrorsExit2: a command line migrate-src cannot run exits 2 with
// one line saying why and a hint to the help, not the whole help.
func TestUsageErrorsExit2(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		hint string
	}{
		{"unknown flag", []string{"--no-such-flag"}, "'migrate-src --help'"},
		{"unknown shorthand", []string{"-x"}, "'migrate-src --help'"},
		{"flag without its value", []string{"web", "--to"}, "'migrate-src --help'"},
		{"unknown flag of check", []string{"check", "--no-such-flag", "web"}, "'migrate-src check --help'"},
		{"unknown flag of install-plugin", []string{"install-plugin", "--no-such-flag"}, "'migrate-src install-plugin --help'"},
		{"argument to install-plugin", []string{"install-plugin", "extra"}, "'migrate-src install-plugin --help'"},
		{"no destination", []string{"web"}, "'migrate-src --help'"},
		{"no container", []string{"--to", "host2"}, "'migrate-src --help'"},
		{"two containers", []string{"--to", "host2", "web", "db"}, "'migrate-src --help'"},
		{"container and pid", []string{"--to", "host2", "--pid", "1", "web"}, "'migrate-src --help'"},
		{"drain a container", []string{"drain", "--to", "host2", "web"}, "'migrate-src drain --help'"},
		{"bad strategy", []string{"--to", "host2", "--strategy", "teleport", "web"}, "'migrate-src --help'"},
		{"bad ghost limit", []string{"--to", "host2", "--ghost-limit", "lots", "web"}, "'migrate-src --help'"},
		{"help on an unknown command", []string{"help", "no-such-command"}, "'migrate-src --help'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runSrc(t, append([]string{"migrate-src"}, tc.args...)...)
			if code != 2 || out != "" {
				t.Fatalf("%q: exit %d, stdout %q; want 2 and nothing", tc.args, code, out)
			}
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "migrate-src: ") || !strings.Contains(lines[1], tc.hint) {
				t.Fatalf("%q: stderr %q; want an error and a hint to %s", tc.args, errOut, tc.hint)
			}
		})
	}
}

// TestNoArgumentsPrintsHelpToStderr: bare migrate-src shows what it takes,
// as a mistake.
func TestNoArgumentsPrintsHelpToStderr(t *testing.T) {
	code, out, errOut := runSrc(t, "migrate-src")
	if code != 2 || out != "" || !strings.HasPrefix(errOut, "usage: migrate-src") {
		t.Fatalf("exit %d, stdout %q, stderr starts %q", code, out, clitest.FirstLine(errOut))
	}
}

// TestFlagHelpHasNoBackquoteTypes: pflag shows a usage string's first
// backquoted words as the flag's value, so "(from `migrate-dst certs`)"
// rendered as "--tls-dir migrate-dst certs". The value shown must be a
// type (string, duration, ...) or a placeholder such as DIR.
func TestFlagHelpHasNoBackquoteTypes(t *testing.T) {
	for _, name := range commandNames {
		_, out, _ := runSrc(t, "migrate-src", name, "--help")
		clitest.CheckFlagHelp(t, name, out)
	}
}

// TestGenerate: migrate-src's man page shows every command with its
// flags, and its bash completion completes them.
func TestGenerate(t *testing.T) {
	code, page, errOut := runSrc(t, "migrate-src", "generate", "man")
	for _, want := range []string{".TH MIGRATE-SRC 1", `.SS "migrate\-src drain"`, `\fB\-\-strategy\fR`, `\fB\-\-docker\-config\fR`, "Flags: those of \\fBmigrate-src\\fR.", ".BR migrate-dst (1)"} {
		if code != 0 || !strings.Contains(page, want) {
			t.Errorf("man page (exit %d, %s) lacks %q", code, errOut, want)
		}
	}
	code, completion, _ := runSrc(t, "migrate-src", "generate", "bash-completion")
	for _, want := range []string{"complete -o default -F _dockmove_migrate_src migrate-src", "install-plugin) flags=\"--docker-config --help\"", "--strategy"} {
		if code != 0 || !strings.Contains(completion, want) {
			t.Errorf("bash completion (exit %d) lacks %q", code, want)
		}
	}
	if code, _, errOut := runSrc(t, "migrate-src", "generate", "systemd-unit"); code != 2 || !strings.Contains(errOut, "man, bash-completion") {
		t.Errorf("a document migrate-src has not: exit %d, %q", code, errOut)
	}
}
