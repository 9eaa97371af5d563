package clitest

import (
	"fmt"
	"testing"
)

const help = `usage: tool run [flags] NAME

flags:
      --tls-dir DIR       credentials
  -v, --verbose           more
      --timeout duration  how long
      --level[=N] int     zstd level

examples:
  tool run x
`

func TestFlagValuesReadsTheFlagsSection(t *testing.T) {
	got := FlagValues(help)
	want := map[string]string{"tls-dir": "DIR", "verbose": "", "timeout": "duration", "level": "int"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("--%s: got %q, want %q", k, got[k], v)
		}
	}
	if s := Section(help, "examples:"); s != "  tool run x\n" && s != "  tool run x" {
		t.Errorf("examples section: %q", s)
	}
	if FirstLine(help) != "usage: tool run [flags] NAME" {
		t.Errorf("first line: %q", FirstLine(help))
	}
}

func TestCheckFlagHelpCatchesABackquoteValue(t *testing.T) {
	var got recorder
	CheckFlagHelp(&got, "run", "usage\n\nflags:\n      --tls-dir migrate-dst certs   from `migrate-dst certs`\n")
	if len(got) != 2 {
		t.Fatalf("want the backquote and the value named, got %q", got)
	}
	got = nil
	CheckFlagHelp(&got, "run", help)
	if len(got) != 0 {
		t.Fatalf("a clean help failed: %q", got)
	}
}

// recorder is a fake T that keeps what the check reported.
type recorder []string

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	*r = append(*r, fmt.Sprintf(format, args...))
}
