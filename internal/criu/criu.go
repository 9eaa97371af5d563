// Package criu holds what dockmove needs from CRIU itself: which version and
// kernel features this host offers, and CRIU failures as structured errors
// that carry the log lines explaining them.
package criu

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
)

// MinVersion is the oldest CRIU that can dump TCP sockets on kernels >= 6.16
// (4.1.1 fails with "sockets: Can't get 1:16 opt"), encoded as CRIU does:
// major*10000 + minor*100 + sublevel.
const MinVersion = 40201

var (
	// ErrTooOld reports a CRIU older than MinVersion.
	ErrTooOld = errors.New("criu: version too old")
	// ErrNotFound reports that no criu binary could be started.
	ErrNotFound = errors.New("criu: binary not found")
)

// Capabilities is what CRIU and the kernel allow on this host; it decides
// which migration strategies can run.
type Capabilities struct {
	Version   int  // CRIU version, major*10000 + minor*100 + sublevel
	MemTrack  bool // soft-dirty tracking: pre-dumps (pre-copy, hybrid)
	LazyPages bool // userfaultfd: lazy restore (post-copy, hybrid)
}

// VersionString renders Version as "major.minor.sublevel".
func (c Capabilities) VersionString() string {
	return fmt.Sprintf("%d.%d.%d", c.Version/10000, c.Version/100%100, c.Version%100)
}

// Error is a failed CRIU operation with the log lines that explain it.
type Error struct {
	Op      string   // "dump", "restore", "pre-dump", ...
	LogPath string   // CRIU's log file for this operation
	Lines   []string // the log's error lines and what preceded them
	Err     error    // the failure reported through RPC or exit status
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "criu %s: %v", e.Op, e.Err)
	if e.LogPath != "" {
		fmt.Fprintf(&b, " (log %s)", e.LogPath)
	}
	for _, l := range e.Lines {
		b.WriteString("\n\t")
		b.WriteString(l)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// NewError wraps err from operation op and attaches the interesting lines of
// the log at logPath, if it can be read.
func NewError(op, logPath string, err error) *Error {
	return &Error{Op: op, LogPath: logPath, Lines: errorLines(logPath, 3, 12), Err: err}
}

// errorLines returns each "Error" line of a CRIU log with up to before lines
// of context, at most max lines in all (the last ones: CRIU's final errors
// name the cause); the log's last lines when it has no error line.
func errorLines(path string, before, max int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var window, out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		// Without CAP_SYS_RESOURCE CRIU reports an rlimit error it ignores.
		if strings.Contains(line, "Error") && !strings.Contains(line, "RLIMIT_NOFILE") {
			out = append(out, window...)
			out = append(out, line)
			window = window[:0]
			continue
		}
		window = append(window, line)
		if len(window) > before {
			window = window[1:]
		}
	}
	if len(out) == 0 {
		// No error line: CRIU's last words are the best clue.
		out = window
	}
	if len(out) > max {
		out = out[len(out)-max:]
	}
	return out
}
