package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/dockmove/dockmove/internal/version"
)

// TestVersion: --version (and -v) name the runtime and dockmove's release
// before runc's; any other command line prints nothing of its own.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-v"}} {
		var out bytes.Buffer
		printVersion(&out, args)
		if !strings.HasPrefix(out.String(), "dockmove-runtime dockmove "+version.Version+" (") {
			t.Fatalf("%q: %q", args, out.String())
		}
	}
	for _, args := range [][]string{nil, {"state", "x"}, {"--root", "/run/x", "--version"}} {
		var out bytes.Buffer
		if printVersion(&out, args); out.Len() != 0 {
			t.Fatalf("%q printed %q", args, out.String())
		}
	}
}
