package lazypages

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"
)

// TestCloseGateHoldsBackCloseOfADeadCopy: the destination passes the
// daemon's requests on, its CLOSE only while the restored process runs;
// otherwise not a byte of the CLOSE goes on (whole frames before it do),
// the stream ends in the check's error, and the daemon's outcome says the
// transfer did not complete. Reads of any size, down to one byte.
func TestCloseGateHoldsBackCloseOfADeadCopy(t *testing.T) {
	get := frame(7 | 2<<16)
	stream := bytes.Join([][]byte{get, get, frame(cmdClose)}, nil)
	dead := errors.New("the restored process ended")
	for _, tc := range []struct {
		name  string
		alive error
		want  []byte
	}{
		{"copy runs", nil, stream},
		{"copy dead", dead, stream[:2*iovSize]},
	} {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = bytes.NewReader(stream)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			d := newDaemon()
			check := func() error { return tc.alive }
			d.Require(check)
			got, err := io.ReadAll(&closeGate{r: r, allow: d.allowClose})
			if !bytes.Equal(got, tc.want) || !errors.Is(err, tc.alive) {
				t.Fatalf("%s (one byte per read %v): passed %d of %d bytes, err %v", tc.name, oneByte, len(got), len(stream), err)
			}
			if derr := d.Err(); (derr == nil) != (tc.alive == nil) || derr != nil && !errors.Is(derr, ErrIncomplete) {
				t.Fatalf("%s: the daemon's outcome: %v", tc.name, derr)
			}
		}
	}
	if err := newDaemon().Err(); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("a daemon that never said CLOSE: outcome %v, want incomplete", err)
	}
}

// TestCloseBeforeTheRestoreSucceededWaits: a CLOSE that comes before the
// restore is known to have succeeded waits for it (a small container's
// pages can all arrive first), and is refused if the daemon is stopped
// instead (the restore failed: its tasks are gone, and the daemon says
// CLOSE all the same).
func TestCloseBeforeTheRestoreSucceededWaits(t *testing.T) {
	stream := frame(cmdClose)
	for _, succeeded := range []bool{true, false} {
		d := newDaemon()
		got := make(chan error, 1)
		go func() {
			_, err := io.ReadAll(&closeGate{r: bytes.NewReader(stream), allow: d.allowClose})
			got <- err
		}()
		select {
		case err := <-got:
			t.Fatalf("the CLOSE went on (err %v) before the restore's outcome was known", err)
		case <-time.After(100 * time.Millisecond):
		}
		if succeeded {
			d.Require(func() error { return nil })
		} else {
			d.stoppingOnce.Do(func() { close(d.stopping) })
		}
		if err := <-got; (err == nil) != succeeded {
			t.Fatalf("restore succeeded %v: the gate ended with %v", succeeded, err)
		}
		if err := d.Err(); (err == nil) != succeeded {
			t.Fatalf("restore succeeded %v: the daemon's outcome %v", succeeded, err)
		}
	}
}

// TestOutcomeWaitsForTheLastRequest: the daemon may exit before its CLOSE
// was read from its connection; its outcome waits for the gate to judge
// it, or a CLOSE passed on to the source would be reported as a failure
// here (and the copy removed while the source ends the original).
func TestOutcomeWaitsForTheLastRequest(t *testing.T) {
	d := newDaemon()
	d.Require(func() error { return nil })
	d.gates.Add(1) // a connection was accepted, not yet read
	got := make(chan error, 1)
	go func() { got <- d.Err() }()
	select {
	case err := <-got:
		t.Fatalf("the outcome (%v) came before the last request was read", err)
	case <-time.After(100 * time.Millisecond):
	}
	if _, err := io.ReadAll(&closeGate{r: bytes.NewReader(frame(cmdClose)), allow: d.allowClose, ended: d.gateEnded}); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("every page arrived, the CLOSE went on: outcome %v", err)
	}
}

// TestNoCloseGoesOnAfterStop: once Stop has begun, no CLOSE goes on to the
// source, even for a copy that runs (the migration failed here).
func TestNoCloseGoesOnAfterStop(t *testing.T) {
	d := newDaemon()
	d.Require(func() error { return nil })
	d.stoppingOnce.Do(func() { close(d.stopping) }) // Stop, without a process
	if _, err := io.ReadAll(&closeGate{r: bytes.NewReader(frame(cmdClose)), allow: d.allowClose}); err == nil {
		t.Fatal("a CLOSE went on after Stop")
	}
}

// TestForbidSaysWhetherEveryPageArrived: Forbid, as a migration fails
// here, reports every page delivered only when a CLOSE went on to the
// source and the daemon then ended well (it says CLOSE after a failure
// too, then exits in error); a CLOSE after Forbid is held back.
func TestForbidSaysWhetherEveryPageArrived(t *testing.T) {
	for _, tc := range []struct {
		name      string
		close     bool
		exitErr   error
		delivered bool
	}{
		{"CLOSE, then a clean exit", true, nil, true},
		{"CLOSE after the source had gone, then an error", true, errors.New("page-xfer: Remote side closed connection"), false},
		{"no CLOSE yet", false, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDaemon()
			d.Require(func() error { return nil })
			gate := func() error {
				_, err := io.ReadAll(&closeGate{r: bytes.NewReader(frame(cmdClose)), allow: d.allowClose})
				return err
			}
			if tc.close {
				if err := gate(); err != nil {
					t.Fatal(err)
				}
				d.err = tc.exitErr
				close(d.done)
			}
			if got := d.Forbid(); got != tc.delivered {
				t.Fatalf("Forbid says every page arrived: %v, want %v", got, tc.delivered)
			}
			if !tc.close && gate() == nil {
				t.Fatal("a CLOSE went on after Forbid")
			}
		})
	}
}
