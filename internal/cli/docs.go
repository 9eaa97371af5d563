package cli

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// Docs is what a program's man page and bash completion are made of: its
// help and the flags of each of its commands, as its --help shows them.
type Docs struct {
	Help Help
	// Version is dockmove's version, in the man page's footer.
	Version string
	// Flags are each command's flags by Command.Name; nil for a command
	// that has none.
	Flags map[string]*pflag.FlagSet
	// SeeAlso names related programs' man pages ("migrate-src").
	SeeAlso []string
}

// CollectDocs gathers h's commands' flags by running `COMMAND --help` for
// each of them with run, which must run the command line args with the
// help it is given (whose Collect receives the flags instead of the help
// being written).
func CollectDocs(h Help, version string, run func(h Help, args []string)) Docs {
	d := Docs{Help: h, Version: version, Flags: map[string]*pflag.FlagSet{}}
	collecting := h
	collecting.Collect = func(name string, fs *pflag.FlagSet) {
		if cmd, ok := h.Lookup(name); ok {
			d.Flags[cmd.Name] = fs
		}
	}
	for _, c := range h.Commands {
		args := []string{"--help"}
		if c.Name != "" {
			args = []string{c.Name, "--help"}
		}
		run(collecting, args)
	}
	return d
}

// DocKind is a document a program generates about itself.
type DocKind string

// The documents Docs writes.
const (
	DocMan            DocKind = "man"             // a man page (troff, section 1)
	DocBashCompletion DocKind = "bash-completion" // a bash completion script
)

// DocKinds lists every DocKind.
var DocKinds = []DocKind{DocMan, DocBashCompletion}

func (k DocKind) String() string { return string(k) }

// ParseDocKind returns the DocKind that s names.
func ParseDocKind(s string) (DocKind, error) {
	if slices.Contains(DocKinds, DocKind(s)) {
		return DocKind(s), nil
	}
	return "", fmt.Errorf("unknown document %q (one of %s)", s, joinKinds(DocKinds))
}

func joinKinds(kinds []DocKind) string {
	s := make([]string, len(kinds))
	for i, k := range kinds {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// Write writes the document kind.
func (d Docs) Write(w io.Writer, kind DocKind) error {
	var b strings.Builder
	switch kind {
	case DocMan:
		d.writeMan(&b)
	case DocBashCompletion:
		d.writeBashCompletion(&b)
	default:
		return fmt.Errorf("unknown document %q", kind)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeMan writes the man page: the program's synopsis, what it does, then
// each command with its synopsis, flags and examples.
func (d Docs) writeMan(b *strings.Builder) {
	h := d.Help
	top, _ := h.Lookup("")
	fmt.Fprintf(b, ".TH %s 1 \"\" \"dockmove %s\" \"dockmove\"\n", strings.ToUpper(h.Program), d.Version)
	fmt.Fprintf(b, ".SH NAME\n%s \\- %s\n", h.Program, roff(strings.TrimSuffix(lowerFirst(h.About), ".")))
	b.WriteString(".SH SYNOPSIS\n.nf\n")
	for _, c := range h.Commands {
		for _, u := range c.Usage {
			fmt.Fprintf(b, "\\fB%s\\fR %s\n", h.Program, roffCode(u))
		}
	}
	fmt.Fprintf(b, ".fi\n.SH DESCRIPTION\n%s\n.SH COMMANDS\n", roff(h.About))
	for _, c := range h.Commands {
		d.writeManCommand(b, c, top)
	}
	if len(d.SeeAlso) > 0 {
		b.WriteString(".SH SEE ALSO\n")
		for i, p := range d.SeeAlso {
			sep := ",\n"
			if i == len(d.SeeAlso)-1 {
				sep = "\n"
			}
			fmt.Fprintf(b, ".BR %s (1)%s", p, sep)
		}
	}
}

// writeManCommand writes one command's part of the man page; a command
// whose flags are the default command's refers to them.
func (d Docs) writeManCommand(b *strings.Builder, c, top Command) {
	h := d.Help
	name := h.Program
	if c.Name != "" && c.Name != top.Name {
		name += " " + c.Name
	} else if c.Name != "" {
		name += " [" + c.Name + "]"
	}
	fmt.Fprintf(b, ".SS \"%s\"\n%s\n", roffCode(name), roff(upperFirst(c.Summary)+"."))
	fmt.Fprintf(b, ".PP\n.nf\n")
	for _, u := range c.Usage {
		fmt.Fprintf(b, "%s %s\n", h.Program, roffCode(u))
	}
	b.WriteString(".fi\n")
	fs, topFlags := d.Flags[c.Name], d.Flags[top.Name]
	own := func(*pflag.Flag) bool { return true }
	switch {
	case fs == nil || !fs.HasAvailableFlags():
		own = func(*pflag.Flag) bool { return false }
	case c.Name != top.Name && sameFlags(fs, topFlags):
		fmt.Fprintf(b, ".PP\nFlags: those of \\fB%s\\fR.\n", h.Program)
		own = func(*pflag.Flag) bool { return false }
	case c.Name != top.Name && hasFlags(fs, topFlags):
		fmt.Fprintf(b, ".PP\nFlags: those of \\fB%s\\fR, and:\n", h.Program)
		own = func(f *pflag.Flag) bool {
			shared := topFlags.Lookup(f.Name)
			return shared == nil || shared.Usage != f.Usage
		}
	default:
		b.WriteString(".PP\nFlags:\n")
	}
	if fs != nil {
		fs.VisitAll(func(f *pflag.Flag) {
			if own(f) && !f.Hidden && f.Deprecated == "" {
				writeManFlag(b, f)
			}
		})
	}
	if len(c.Examples) > 0 {
		b.WriteString(".PP\nExamples:\n.PP\n.RS\n.nf\n")
		for _, e := range c.Examples {
			fmt.Fprintf(b, "%s %s\n", h.Program, roffCode(e))
		}
		b.WriteString(".fi\n.RE\n")
	}
}

// writeManFlag writes one flag as a tagged paragraph.
func writeManFlag(b *strings.Builder, f *pflag.Flag) {
	varname, usage := pflag.UnquoteUsage(f)
	b.WriteString(".TP\n")
	if f.Shorthand != "" {
		fmt.Fprintf(b, "\\fB\\-%s\\fR, ", roffCode(f.Shorthand))
	}
	fmt.Fprintf(b, "\\fB\\-\\-%s\\fR", roffCode(f.Name))
	if varname != "" {
		fmt.Fprintf(b, " \\fI%s\\fR", roffCode(varname))
	}
	b.WriteString("\n" + roff(usage))
	if !zeroDefault(f.DefValue) {
		fmt.Fprintf(b, " (default: %s)", roffCode(f.DefValue))
	}
	b.WriteString("\n")
}

// zeroDefault reports whether a flag's default says nothing worth showing.
func zeroDefault(v string) bool {
	switch v {
	case "", "false", "0", "0s", "[]", "map[]":
		return true
	}
	return false
}

// sameFlags reports whether a and b have the same flags.
func sameFlags(a, b *pflag.FlagSet) bool {
	if a == nil || b == nil {
		return false
	}
	return slices.Equal(flagNames(a), flagNames(b))
}

// hasFlags reports whether a has every flag of b (and more).
func hasFlags(a, b *pflag.FlagSet) bool {
	if a == nil || b == nil {
		return false
	}
	all := true
	b.VisitAll(func(f *pflag.Flag) { all = all && (f.Hidden || a.Lookup(f.Name) != nil) })
	return all
}

func flagNames(fs *pflag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	return names
}

// roff escapes prose for troff: backslashes, and a line's leading dot or
// quote, which would start a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

// roffCode escapes what is typed (flags, command lines): prose escaping,
// and hyphens as minus signs, so that a copied line still runs.
func roffCode(s string) string {
	return strings.ReplaceAll(roff(s), "-", `\-`)
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// writeBashCompletion writes a bash completion script: the commands at
// the first word, then the flags of the command given; after a flag that
// takes a value, and for arguments, bash completes file names.
func (d Docs) writeBashCompletion(b *strings.Builder) {
	h := d.Help
	fn := "_dockmove_" + strings.NewReplacer("-", "_", " ", "_").Replace(h.Program)
	var names []string
	for _, c := range h.Commands {
		if c.Name != "" {
			names = append(names, c.Name)
		}
	}
	top, _ := h.Lookup("")
	fmt.Fprintf(b, "# bash completion for %s (%s generate bash-completion)\n", h.Program, h.Program)
	fmt.Fprintf(b, "%s() {\n", fn)
	b.WriteString("\tlocal cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd= i\n")
	fmt.Fprintf(b, "\tfor ((i = 1; i < COMP_CWORD; i++)); do\n\t\tcase ${COMP_WORDS[i]} in\n\t\t%s) cmd=${COMP_WORDS[i]}; break ;;\n\t\tesac\n\tdone\n", strings.Join(names, " | "))
	b.WriteString("\tlocal flags valued\n\tcase $cmd in\n")
	for _, c := range h.Commands {
		if c.Name == "" || c.Name == top.Name {
			continue
		}
		flags, valued := bashFlags(d.Flags[c.Name])
		fmt.Fprintf(b, "\t%s) flags=%q valued=%q ;;\n", c.Name, flags, valued)
	}
	flags, valued := bashFlags(d.Flags[top.Name])
	fmt.Fprintf(b, "\t*) flags=%q valued=%q ;;\n\tesac\n", flags, valued)
	b.WriteString("\tif [[ $prev == -* && \" $valued \" == *\" $prev \"* ]]; then\n\t\treturn # its value: file names\n\tfi\n")
	b.WriteString("\tif [[ $cur == -* ]]; then\n\t\tCOMPREPLY=($(compgen -W \"$flags\" -- \"$cur\"))\n")
	fmt.Fprintf(b, "\telif [[ -z $cmd ]]; then\n\t\tCOMPREPLY=($(compgen -W %q -- \"$cur\"))\n\tfi\n}\n", strings.Join(names, " "))
	fmt.Fprintf(b, "complete -o default -F %s %s\n", fn, h.Program)
}

// bashFlags returns fs's flags as words, and those that take a value.
func bashFlags(fs *pflag.FlagSet) (flags, valued string) {
	all, withValue := map[string]bool{"--help": true}, map[string]bool{}
	if fs != nil {
		fs.VisitAll(func(f *pflag.Flag) {
			if f.Hidden || f.Deprecated != "" {
				return
			}
			words := []string{"--" + f.Name}
			if f.Shorthand != "" {
				words = append(words, "-"+f.Shorthand)
			}
			for _, w := range words {
				all[w] = true
				if f.NoOptDefVal == "" {
					withValue[w] = true
				}
			}
		})
	}
	return strings.Join(slices.Sorted(maps.Keys(all)), " "), strings.Join(slices.Sorted(maps.Keys(withValue)), " ")
}

// WriteTo runs write on the file path (created or truncated), or on
// stdout if path is "".
func WriteTo(path string, stdout io.Writer, write func(io.Writer) error) error {
	if path == "" {
		return write(stdout)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
