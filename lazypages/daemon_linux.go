package lazypages

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dockmove/dockmove/internal/criu"
	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

// Daemon is a running `criu lazy-pages` on the destination, fed through
// the session's page tunnel.
type Daemon struct {
	cmd    *exec.Cmd
	ln     net.Listener
	done   chan struct{}
	err    error
	log    string
	stderr bytes.Buffer
	stdout bytes.Buffer                 // its summary (ParseSummary)
	alive  atomic.Pointer[func() error] // Require
	// required is closed by Require, stopping by Stop.
	required, stopping        chan struct{}
	requireOnce, stoppingOnce sync.Once
	// gates counts the daemon's connections through the tunnel; ended is
	// closed when one has been read to its end (its CLOSE judged).
	gates     atomic.Int32
	ended     chan struct{}
	endedOnce sync.Once
	// The daemon's CLOSE went to the source (closed), or was held back
	// (refused, why).
	closed  atomic.Bool
	refused atomic.Pointer[error]
	gateMu  sync.Mutex // a CLOSE's judgement against Stop
}

// LogName is the daemon's log file in its work directory. It logs warnings
// and errors only: at debug level it writes a line per page fault, which
// made it CPU-bound (330 faults/s) under a workload that dirties memory.
const LogName = "lazy-pages.log"

// Start runs the lazy-pages daemon for the images in imagesDir with work
// directory workDir (the restore's), its page-server connection tunnelled
// to the peer over sess. It returns once the daemon's socket exists.
func Start(ctx context.Context, sess *transfer.Session, criuBin, imagesDir, workDir string, log *slog.Logger) (*Daemon, error) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ln := newOwnedListener(tcp, func(addr string, err error) {
		log.Warn("refused a local connection to the page tunnel", "from", addr, "err", err)
	})
	d := newDaemon()
	d.ln, d.log = ln, filepath.Join(workDir, LogName)
	go sess.Forward(context.WithoutCancel(ctx), ln, Stream, func(r io.Reader) io.Reader {
		d.gates.Add(1)
		return &closeGate{r: r, allow: d.allowClose, ended: d.gateEnded}
	})
	if criuBin == "" {
		criuBin = "criu"
	}
	port := strconv.Itoa(tcp.Addr().(*net.TCPAddr).Port)
	d.cmd = exec.Command(criuBin, "lazy-pages", "--page-server", "--address", "127.0.0.1", "--port", port,
		"-D", imagesDir, "--work-dir", workDir, "-o", LogName, "-v2")
	d.cmd.Stderr, d.cmd.Stdout = &d.stderr, &d.stdout
	if err := d.cmd.Start(); err != nil {
		ln.Close()
		return nil, fmt.Errorf("lazypages: start daemon: %w", err)
	}
	ln.setPid(d.cmd.Process.Pid)
	go func() {
		err := d.cmd.Wait()
		if err != nil {
			e := criu.NewError("lazy-pages", d.log, err)
			if msg := strings.TrimSpace(d.stderr.String()); msg != "" {
				e.Lines = append(e.Lines, msg)
			}
			d.err = e
		}
		ln.Close()
		close(d.done)
	}()
	if err := d.waitSocket(ctx, filepath.Join(workDir, SocketName)); err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

func (d *Daemon) waitSocket(ctx context.Context, path string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-d.done:
			return fmt.Errorf("lazypages: daemon exited before it was ready: %w", d.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("lazypages: no %s after 10s", path)
		}
	}
}

// Require makes alive the condition of the daemon's end: when the daemon
// says every page arrived (CLOSE), alive must agree (the restored process
// still runs) or the source is told that the transfer failed, and it
// resumes the original. Call it once the restore has succeeded: a CLOSE
// before that waits for it, and fails if Stop comes first (the daemon
// also says CLOSE when the restore failed and its tasks are gone).
func (d *Daemon) Require(alive func() error) {
	d.alive.Store(&alive)
	d.requireOnce.Do(func() { close(d.required) })
}

// allowClose is the page tunnel's closeGate check; it records the outcome
// for Err.
func (d *Daemon) allowClose() error {
	var err error
	select {
	case <-d.required:
	case <-d.stopping:
	}
	d.gateMu.Lock() // Stop waits for the decision: Delivered is final after it
	defer d.gateMu.Unlock()
	select {
	case <-d.stopping:
		err = errors.New("the lazy-pages daemon said every page arrived, but the migration had failed here")
	default:
		err = (*d.alive.Load())()
	}
	if err != nil {
		d.refused.Store(&err)
		return err
	}
	d.closed.Store(true)
	return nil
}

// Done is closed when the daemon has exited.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Err is nil once the daemon exited having delivered every page (its CLOSE
// went to the source); it is ErrIncomplete-wrapped otherwise. Call it
// after Done.
func (d *Daemon) Err() error {
	if d.err != nil {
		return fmt.Errorf("%w: %v", ErrIncomplete, d.err)
	}
	// The daemon may exit before its last request (CLOSE) was read from
	// its connection: the outcome is known once the gate has judged it.
	if d.gates.Load() > 0 {
		select {
		case <-d.ended:
		case <-time.After(gateWait):
			return fmt.Errorf("%w: the daemon's last requests were not read within %v", ErrIncomplete, gateWait)
		}
	}
	if r := d.refused.Load(); r != nil {
		return fmt.Errorf("%w: %v", ErrIncomplete, *r)
	}
	if !d.closed.Load() {
		return fmt.Errorf("%w: the daemon ended without saying that every page arrived", ErrIncomplete)
	}
	return nil
}

func newDaemon() *Daemon {
	return &Daemon{done: make(chan struct{}), required: make(chan struct{}), stopping: make(chan struct{}), ended: make(chan struct{})}
}

// gateWait bounds how long Err waits for the daemon's connection to be
// read to its end once the daemon has exited.
const gateWait = 10 * time.Second

// gateEnded is called when a connection of the daemon's has been read to
// its end.
func (d *Daemon) gateEnded() { d.endedOnce.Do(func() { close(d.ended) }) }

// Summary is what the daemon did, if it said (ParseSummary). Call it after
// Done.
func (d *Daemon) Summary() (protocol.PostCopyStats, bool) {
	return ParseSummary(d.stdout.Bytes())
}

// ExitErr is why the daemon exited, nil for a clean exit (which alone does
// not say that every page arrived: see Err). Call it after Done.
func (d *Daemon) ExitErr() error { return d.err }

// Forbid holds back any CLOSE from now on (the migration failed here) and
// reports whether every page had arrived: a CLOSE had been let through to
// the source, whose CRIU then ends the original, and the daemon ended
// well (it says CLOSE after failing too, when the source is gone, and
// then exits with an error a moment later: waited for, gateWait at most).
// The copy here is then the container, whatever failed after.
func (d *Daemon) Forbid() (delivered bool) {
	d.gateMu.Lock()
	d.stoppingOnce.Do(func() { close(d.stopping) })
	closed := d.closed.Load()
	d.gateMu.Unlock()
	if !closed {
		return false
	}
	select {
	case <-d.done:
	case <-time.After(gateWait):
		return false
	}
	return d.Err() == nil
}

// Stop kills the daemon (the restored process then cannot get its pages).
func (d *Daemon) Stop() {
	d.gateMu.Lock()
	d.stoppingOnce.Do(func() { close(d.stopping) })
	d.gateMu.Unlock()
	d.cmd.Process.Kill()
	<-d.done
}

// closeGate passes the lazy-pages daemon's requests through on the
// destination, whole frames only, holding back its CLOSE unless allow
// agrees: the daemon also says CLOSE when the restored tasks have all
// exited with pages still missing (killed on the destination, say), and
// the page server would take it for "every page delivered" and end the
// original, leaving no copy at all. Refused, the stream ends with allow's
// error instead (not a byte of the CLOSE sent), so that CRIU resumes the
// original.
type closeGate struct {
	r       io.Reader
	allow   func() error
	ended   func() // called once the stream was read to its end, if set
	pending []byte // read, not yet passed on
	rerr    error  // r's end
	err     error  // allow's refusal
}

func (g *closeGate) Read(p []byte) (int, error) {
	n, err := g.read(p)
	if err != nil && g.ended != nil {
		g.ended()
	}
	return n, err
}

func (g *closeGate) read(p []byte) (int, error) {
	var buf [64 * iovSize]byte
	for len(g.pending) < iovSize && g.rerr == nil {
		n, err := g.r.Read(buf[:])
		g.pending, g.rerr = append(g.pending, buf[:n]...), err
	}
	if g.err != nil {
		return 0, g.err
	}
	whole := min(len(g.pending), len(p)) / iovSize * iovSize
	if whole == 0 {
		// Less than a frame left, at the end of the stream (or a tiny p).
		n := copy(p, g.pending)
		g.pending = g.pending[n:]
		if len(g.pending) == 0 {
			return n, g.rerr
		}
		return n, nil
	}
	for off := 0; off < whole; off += iovSize {
		if binary.LittleEndian.Uint32(g.pending[off:])&cmdMask != cmdClose {
			continue
		}
		if g.err = g.allow(); g.err != nil {
			whole = off
			break
		}
	}
	n := copy(p, g.pending[:whole])
	g.pending = g.pending[n:]
	if n == 0 {
		return 0, g.err
	}
	return n, nil
}
