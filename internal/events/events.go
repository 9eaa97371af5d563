// Package events is the agents' machine-readable event stream (--events):
// JSON lines that tests and scripts read instead of what is printed for
// people.
package events

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Event is one line of an agent's machine-readable event stream (--events):
// the stages as the migration enters them, then its end. Tests and
// scripts read these, never the lines printed for people.
type Event struct {
	Event   string  `json:"event"` // "stage", "end", or "ready" (migrate-dst accepts migrations at Detail)
	Stage   string  `json:"stage,omitempty"`
	Detail  string  `json:"detail,omitempty"`
	Elapsed float64 `json:"elapsed_s"`
	Pid     int     `json:"pid"`
	// MigrationID names the migration in both agents' logs and state.
	MigrationID string `json:"migration_id,omitempty"`
	OK          bool   `json:"ok,omitempty"`    // end: migrated
	Error       string `json:"error,omitempty"` // end: why not
}

// Stream writes an event stream; the zero value (no --events) writes nothing.
type Stream struct {
	mu    sync.Mutex
	f     *os.File
	enc   *json.Encoder
	start time.Time
}

// Open opens path for the event stream ("" for none).
func Open(path string) (*Stream, error) {
	e := &Stream{start: time.Now()}
	if path == "" {
		return e, nil
	}
	var f *os.File
	if n, ok := strings.CutPrefix(path, "/dev/fd/"); ok {
		// An inherited descriptor, named the same where /dev/fd is not
		// mounted (a minimal initramfs).
		fd, err := strconv.Atoi(n)
		if err != nil || fd < 0 {
			return nil, fmt.Errorf("events: bad descriptor %q", path)
		}
		if f = os.NewFile(uintptr(fd), path); f == nil {
			return nil, fmt.Errorf("events: no descriptor %d", fd)
		}
		if _, err := f.Stat(); err != nil {
			return nil, fmt.Errorf("events: %s: %w", path, err)
		}
	} else {
		var err error
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
			return nil, err
		}
	}
	e.f, e.enc = f, json.NewEncoder(f)
	return e, nil
}

func (e *Stream) write(ev Event) {
	if e.enc == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ev.Elapsed = time.Since(e.start).Seconds()
	ev.Pid = os.Getpid()
	e.enc.Encode(ev)
}

// Stage records that migration id entered stage.
func (e *Stream) Stage(stage, detail, id string) {
	e.write(Event{Event: "stage", Stage: stage, Detail: detail, MigrationID: id})
}

// Ready records that the agent accepts connections at addr.
func (e *Stream) Ready(addr string) { e.write(Event{Event: "ready", Detail: addr}) }

// End records the outcome.
func (e *Stream) End(err error) {
	ev := Event{Event: "end", OK: err == nil}
	if err != nil {
		ev.Error = err.Error()
	}
	e.write(ev)
}

// Close closes the stream.
func (e *Stream) Close() error {
	if e.f == nil {
		return nil
	}
	return e.f.Close()
}
