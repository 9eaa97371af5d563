package lazypages

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dockmove/dockmove/internal/criu"
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
	go sess.Forward(context.WithoutCancel(ctx), ln, Stream)
	if criuBin == "" {
		criuBin = "criu"
	}
	port := strconv.Itoa(tcp.Addr().(*net.TCPAddr).Port)
	d := &Daemon{ln: ln, done: make(chan struct{}), log: filepath.Join(workDir, LogName)}
	d.cmd = exec.Command(criuBin, "lazy-pages", "--page-server", "--address", "127.0.0.1", "--port", port,
		"-D", imagesDir, "--work-dir", workDir, "-o", LogName, "-v2")
	d.cmd.Stderr = &d.stderr
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

// Done is closed when the daemon has exited.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Err is nil once the daemon exited having delivered every page; it is
// ErrIncomplete-wrapped otherwise. Call it after Done.
func (d *Daemon) Err() error {
	if d.err != nil {
		return fmt.Errorf("%w: %v", ErrIncomplete, d.err)
	}
	return nil
}

// Stop kills the daemon (the restored process then cannot get its pages).
func (d *Daemon) Stop() {
	d.cmd.Process.Kill()
	<-d.done
}
