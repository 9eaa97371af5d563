package cli

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// testDocs collects testHelp's flags as a program would: its commands'
// --help, run with the help that collects.
func testDocs(t *testing.T) Docs {
	t.Helper()
	flagsOf := map[string]func() *pflag.FlagSet{
		"": func() *pflag.FlagSet {
			fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
			fs.Bool("fast", false, "go fast")
			fs.String("dir", "/var/lib/prog", "where it works, with a `DIR`")
			fs.StringP("out", "o", "", "write a -report- here\n.not a request")
			return fs
		},
		"inspect": func() *pflag.FlagSet {
			fs := pflag.NewFlagSet("inspect", pflag.ContinueOnError)
			fs.Bool("json", false, `print JSON (a \ backslash)`)
			return fs
		},
	}
	d := CollectDocs(testHelp, "9.9.9", func(h Help, args []string) {
		name := ""
		if args[0] != "--help" && args[0] != "run" {
			name = args[0]
		}
		h.Write(nil, name, flagsOf[name]())
	})
	d.SeeAlso = []string{"other"}
	return d
}

func TestCollectDocs(t *testing.T) {
	d := testDocs(t)
	if len(d.Flags) != 2 || d.Flags["run"].Lookup("fast") == nil || d.Flags["inspect"].Lookup("json") == nil {
		t.Fatalf("collected %v", d.Flags)
	}
}

func TestDocsMan(t *testing.T) {
	var b bytes.Buffer
	if err := testDocs(t).Write(&b, DocMan); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{
		".TH PROG 1 \"\" \"dockmove 9.9.9\"", ".SH NAME\nprog \\- prog does things\n",
		"\\fBprog\\fR inspect NAME\n", ".SS \"prog inspect\"\nLook at NAME.\n",
		"\\fB\\-\\-dir\\fR \\fIDIR\\fR\nwhere it works, with a DIR (default: /var/lib/prog)\n",
		"\\fB\\-o\\fR, \\fB\\-\\-out\\fR \\fIstring\\fR\nwrite a -report- here\n\\&.not a request\n",
		"print JSON (a \\e backslash)", "prog inspect web\n", ".BR other (1)\n",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("man page lacks %q:\n%s", want, page)
		}
	}
	groff, err := exec.LookPath("groff")
	if err != nil {
		skipOrFail(t, "groff not in PATH (package groff-base; run: make deps): the page's troff is not checked")
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("groff: %v\n%s", err, out)
	}
}

// TestDocsBashCompletion runs the script in bash and asks it what it
// completes.
func TestDocsBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		skipOrFail(t, "bash not in PATH")
	}
	var b bytes.Buffer
	if err := testDocs(t).Write(&b, DocBashCompletion); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(script, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		words []string // the last is the word completed
		want  string   // COMPREPLY joined by spaces
	}{
		{"commands", []string{"prog", ""}, "run inspect"},
		{"command prefix", []string{"prog", "in"}, "inspect"},
		{"default flags", []string{"prog", "--"}, "--dir --fast --help --out"},
		{"short flag", []string{"prog", "-"}, "--dir --fast --help --out -o"},
		{"command flags", []string{"prog", "inspect", "--"}, "--help --json"},
		{"after a flag", []string{"prog", "--fast", "ins"}, "inspect"},
		{"a flag's value", []string{"prog", "--dir", ""}, ""},
		{"argument", []string{"prog", "inspect", "x"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var words strings.Builder
			for _, w := range tc.words {
				words.WriteString(" '" + w + "'")
			}
			cmd := exec.Command(bash, "-c", `source "$1" && COMP_WORDS=(`+words.String()+`) && COMP_CWORD=$((${#COMP_WORDS[@]} - 1)) && _dockmove_prog && echo "${COMPREPLY[*]}"`, "bash", script)
			out, err := cmd.CombinedOutput()
			if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
				t.Fatalf("completes %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

func TestParseDocKind(t *testing.T) {
	for _, k := range DocKinds {
		if got, err := ParseDocKind(k.String()); err != nil || got != k {
			t.Errorf("%s: %v, %v", k, got, err)
		}
	}
	if _, err := ParseDocKind("zsh-completion"); err == nil || !strings.Contains(err.Error(), "man, bash-completion") {
		t.Errorf("unknown kind: %v", err)
	}
}

// skipOrFail skips for a missing prerequisite, or fails in strict mode
// (DOCKMOVE_STRICT=1, as make test runs), where it should be there.
func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("DOCKMOVE_STRICT") == "1" {
		t.Fatalf("prerequisite missing in strict mode: %s", reason)
	}
	t.Skipf("prerequisite missing: %s", reason)
}
