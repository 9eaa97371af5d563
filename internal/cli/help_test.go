package cli

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

var testHelp = Help{
	Program: "prog",
	About:   "Prog does things.",
	Commands: []Command{
		{Name: "run", Usage: []string{"[run] [flags]"}, Summary: "run it (the default)", Examples: []string{"--fast"}},
		{Name: "inspect", Usage: []string{"inspect NAME"}, Summary: "look at NAME", Examples: []string{"inspect web"}},
	},
}

func TestHelpWrite(t *testing.T) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.Bool("fast", false, "go fast")
	for _, tc := range []struct {
		name, command string
		want          []string
	}{
		{"program", "", []string{"usage: prog [run] [flags]\n       prog COMMAND [flags]\n\nProg does things.\n",
			"commands:\n  run      run it (the default)\n  inspect  look at NAME\n", "examples:\n  prog --fast\n", "flags:\n      --fast", "Run 'prog COMMAND --help'"}},
		{"default by name", "run", []string{"usage: prog [run] [flags]\n       prog COMMAND [flags]\n"}},
		{"command", "inspect", []string{"usage: prog inspect NAME\n\nlook at NAME\n", "  inspect  look at NAME\n", "examples:\n  prog inspect web\n"}},
		{"unknown", "nope", []string{"usage: prog [run] [flags]\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			testHelp.Write(&b, tc.command, fs)
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("help lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

func TestHelpExit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		code   int
		stderr string
	}{
		{"success", nil, 0, ""},
		{"help written", pflag.ErrHelp, 0, ""},
		{"usage", Usagef("inspect", "no NAME"), 2, "prog: no NAME\nRun 'prog inspect --help' for usage.\n"},
		{"program usage", fmt.Errorf("parsing: %w", Usagef("", "unknown flag: --x")), 2, "prog: parsing: unknown flag: --x\nRun 'prog --help' for usage.\n"},
		{"failure", errors.New("boom"), 1, "prog: boom\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if code := testHelp.Exit(&b, tc.err); code != tc.code || b.String() != tc.stderr {
				t.Fatalf("exit %d, stderr %q; want %d, %q", code, b.String(), tc.code, tc.stderr)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		help  bool
		usage bool
	}{
		{"fine", []string{"--fast"}, false, false},
		{"long help", []string{"--help"}, true, false},
		{"short help", []string{"-h"}, true, false},
		{"unknown", []string{"--slow"}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
			fs.Bool("fast", false, "go fast")
			err := ParseFlags(fs, "run", tc.args)
			var usage *UsageError
			if errors.Is(err, pflag.ErrHelp) != tc.help || errors.As(err, &usage) != tc.usage {
				t.Fatalf("%q: %v", tc.args, err)
			}
		})
	}
}
