// Package criu holds what dockmove needs from CRIU itself: which version and
// kernel features this host offers, and CRIU failures as structured errors
// that carry the log lines explaining them.
package criu

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
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
	// NFTables: CRIU can lock a dumped tree's network with nftables, in
	// its own process, where the iptables lock runs iptables-restore
	// (and the restore's unlock seven more programs) inside the freeze.
	NFTables bool
}

// VersionString renders Version as "major.minor.sublevel".
func (c Capabilities) VersionString() string {
	return fmt.Sprintf("%d.%d.%d", c.Version/10000, c.Version/100%100, c.Version%100)
}

// Error is a failed CRIU operation with the log lines that explain it.
type Error struct {
	Op      string // "dump", "restore", "pre-dump", ...
	LogPath string // CRIU's log file for this operation
	// Cause is the first error CRIU logged that is not noise: what went
	// wrong first ("" if the log names none). CRIU's RPC answer carries
	// its first error line, which on a host without CAP_SYS_RESOURCE is
	// an rlimit failure CRIU ignores.
	Cause string
	Lines []string // the log's error lines and what preceded them
	Err   error    // the failure reported through RPC or exit status
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Cause != "" {
		fmt.Fprintf(&b, "criu %s failed: %s", e.Op, e.Cause)
	} else {
		fmt.Fprintf(&b, "criu %s: %v", e.Op, e.Err)
	}
	if e.LogPath != "" {
		fmt.Fprintf(&b, " (log %s)", e.LogPath)
	}
	if means, todo, ok := explain(e.Cause); ok {
		fmt.Fprintf(&b, "\n\twhat it means: %s\n\twhat to do: %s", means, todo)
	}
	for _, l := range e.Lines {
		b.WriteString("\n\t")
		b.WriteString(l)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// KeptLogs is how many failed runs' logs a directory given to Keep holds:
// the oldest go first.
const KeptLogs = 20

// Keep copies the log the error names into dir (made if missing) and
// names the copy instead, so the log outlives the run's directory (a
// failed migration's rollback removes its dump). dir keeps the KeptLogs
// newest logs. A log that cannot be kept is left named where it was.
func (e *Error) Keep(dir string) error {
	if e.LogPath == "" {
		return nil
	}
	data, err := os.ReadFile(e.LogPath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	kept := filepath.Join(dir, time.Now().UTC().Format("20060102T150405.000000000Z")+"-"+e.Op+".log")
	if err := os.WriteFile(kept, data, 0o600); err != nil {
		return err
	}
	e.LogPath = kept
	old, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(old) <= KeptLogs {
		return err
	}
	sort.Strings(old) // (named by time)
	for _, f := range old[:len(old)-KeptLogs] {
		os.Remove(f)
	}
	return nil
}

// KeepLog is Keep for the CRIU error in err's chain, if any, logging
// nothing: where the log stays is in the error.
func KeepLog(err error, dir string) {
	var ce *Error
	if errors.As(err, &ce) && dir != "" {
		ce.Keep(dir)
	}
}

// momentary are causes that describe an instant of the tree rather than
// something about it: a Unix connection a client made and wrote to (or
// closed) before the server accepted it, which CRIU cannot dump. A dump
// a moment later usually finds the connection accepted.
var momentary = []string{
	"Non-empty write queue on an in-flight socket",
	"Found a closed in-flight socket",
}

// Momentary reports whether err is a CRIU failure caused by a momentary
// state of the tree, which a second attempt is likely to miss.
func Momentary(err error) bool {
	var ce *Error
	if !errors.As(err, &ce) {
		return false
	}
	for _, m := range momentary {
		if strings.Contains(ce.Cause, m) {
			return true
		}
	}
	return false
}

// NewError wraps err from operation op and attaches the interesting lines of
// the log at logPath, if it can be read.
func NewError(op, logPath string, err error) *Error {
	lines := errorLines(logPath, 3, 12)
	return &Error{Op: op, LogPath: logPath, Cause: firstCause(logPath), Lines: lines, Err: err}
}

// noise is an error CRIU logs and goes on from: without CAP_SYS_RESOURCE
// it cannot raise its own open-files limit.
func noise(line string) bool { return strings.Contains(line, "RLIMIT_NOFILE") }

// firstCause is the message of the first error line of a CRIU log that is
// not noise ("File sbin/docker-init has bad size 752504 (expect 708080)"
// of "(00.056187) 1: Error (criu/files-reg.c:2175): File sbin/...").
func firstCause(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, "Error (")
		if i < 0 || noise(line) {
			continue
		}
		if j := strings.Index(line[i:], "): "); j > 0 {
			return strings.TrimSpace(line[i+j+3:])
		}
		return strings.TrimSpace(line[i:])
	}
	return ""
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
		if strings.Contains(line, "Error") && !noise(line) {
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
