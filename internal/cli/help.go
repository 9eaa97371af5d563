package cli

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/spf13/pflag"
)

// helpWidth is the column the flags' descriptions wrap at: a terminal's
// 80 would leave the long ones a narrow strip right of the flag names.
const helpWidth = 110

// Command describes one command of a program for its help.
type Command struct {
	// Name is the first argument that selects the command. "" names the
	// default command of a program whose default has no name.
	Name string
	// Usage are the command's synopsis lines, after the program's name.
	Usage []string
	// Summary says in one line what the command does.
	Summary string
	// Examples are command lines, after the program's name.
	Examples []string
}

// Help is a program's help: what --help, -h and "help COMMAND" print.
type Help struct {
	// Program is the name people type: "migrate-dst", or "docker migrate"
	// for the Docker CLI plugin.
	Program string
	// About says what the program does, under the synopsis of its default
	// command.
	About string
	// Commands are the program's commands, its default one first: the
	// program's own help is its default command's.
	Commands []Command
	// Collect, if set, is handed each command's flags in place of the
	// help Write would write: how a program gathers them for its man page
	// and shell completion (Docs) without running a command.
	Collect func(command string, fs *pflag.FlagSet)
}

// Lookup returns the command that name selects; "" selects the default.
func (h Help) Lookup(name string) (Command, bool) {
	if name == "" && len(h.Commands) > 0 {
		return h.Commands[0], true
	}
	for _, c := range h.Commands {
		if c.Name == name {
			return c, true
		}
	}
	return Command{}, false
}

// Write writes the help of the command that name selects: its synopsis,
// every command with its summary, its examples and then fs's flags (none
// if fs is nil). The default command's help, and that of a name that
// selects none, is the program's.
func (h Help) Write(w io.Writer, name string, fs *pflag.FlagSet) {
	if h.Collect != nil {
		h.Collect(name, fs)
		return
	}
	cmd, ok := h.Lookup(name)
	if !ok {
		cmd, _ = h.Lookup("")
	}
	top := len(h.Commands) > 0 && cmd.Name == h.Commands[0].Name
	usage, about := cmd.Usage, cmd.Summary
	if top {
		usage, about = append(usage[:len(usage):len(usage)], "COMMAND [flags]"), h.About
	}
	var b strings.Builder
	for i, u := range usage {
		lead := "usage: "
		if i > 0 {
			lead = "       "
		}
		fmt.Fprintf(&b, "%s%s %s\n", lead, h.Program, u)
	}
	fmt.Fprintf(&b, "\n%s\n\ncommands:\n", about)
	width := 0
	for _, c := range h.Commands {
		width = max(width, len(c.Name))
	}
	for _, c := range h.Commands {
		if c.Name != "" {
			fmt.Fprintf(&b, "  %-*s  %s\n", width, c.Name, c.Summary)
		}
	}
	if len(cmd.Examples) > 0 {
		b.WriteString("\nexamples:\n")
		for _, e := range cmd.Examples {
			fmt.Fprintf(&b, "  %s %s\n", h.Program, e)
		}
	}
	if fs != nil && fs.HasAvailableFlags() {
		fmt.Fprintf(&b, "\nflags:\n%s", fs.FlagUsagesWrapped(helpWidth))
	}
	if top {
		fmt.Fprintf(&b, "\nRun '%s COMMAND --help' for a command's usage and flags.\n", h.Program)
	}
	io.WriteString(w, b.String())
}

// UsageError is a command line a program cannot run: an unknown command
// or flag, a bad flag value, a missing or extra argument. Exit reports it
// with a hint to the command's help.
type UsageError struct {
	// Command is the command whose help to point to; "" for the program's.
	Command string
	Err     error
}

func (e *UsageError) Error() string { return e.Err.Error() }

func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a *UsageError for command.
func Usagef(command, format string, args ...any) error {
	return &UsageError{Command: command, Err: fmt.Errorf(format, args...)}
}

// ParseFlags parses args into fs, the command command's flags, without
// pflag printing anything: --help and -h return pflag.ErrHelp for the
// caller to write the help, any other mistake a *UsageError.
func ParseFlags(fs *pflag.FlagSet, command string, args []string) error {
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, pflag.ErrHelp) {
		return &UsageError{Command: command, Err: err}
	}
	return err
}

// Exit reports a command's outcome on stderr and returns the program's
// exit status: 0 for success, or for help already written (pflag.ErrHelp);
// 2 for a *UsageError, with a hint to the help; 1 for any other error.
func (h Help) Exit(stderr io.Writer, err error) int {
	var usage *UsageError
	switch {
	case err == nil, errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.As(err, &usage):
		name := h.Program
		if usage.Command != "" {
			name += " " + usage.Command
		}
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", h.Program, err, name)
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", h.Program, err)
		return 1
	}
}

// Version is what --version prints: the program, dockmove's version and
// the Go release and platform the program was built with.
func Version(program, version string) string {
	return fmt.Sprintf("%s dockmove %s (%s, %s/%s)", program, version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
