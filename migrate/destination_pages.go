package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/internal/cli"
	"github.com/dockmove/dockmove/internal/criu"
	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

// pageReceiver takes a stop-and-copy dump's pages as the source's CRIU
// dumps them (protocol.Preflight.RemotePages): each tunnel stream the
// source opens (one per dump attempt) goes to a new `criu page-server`
// writing into dir, emptied first, through a socket pair: nothing listens
// where another local process could connect. What the source sends is
// bounded by allowance(estimate), each. The pages of the attempt that
// succeeded join the images once the images have arrived (place).
type pageReceiver struct {
	dir    string // the page servers' directory
	criu   string
	cancel context.CancelFunc
	mu     sync.Mutex
	ps     *criu.PageServer // the latest attempt's
	err    error            // why ServeTunnelTo ended, if it did
	over   error            // a stream over its bound
}

// failure is why a page stream was cut off, if one was (nil on a nil
// receiver: no remote pages).
func (r *pageReceiver) failure() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.over
}

// pagesDirName is the page servers' directory, beside the images.
const pagesDirName = "pages"

// pageServerExit bounds the wait for the page server to exit once the
// images have arrived: the dump told it every page was sent before it
// finished.
const pageServerExit = 30 * time.Second

// receivePages starts taking the source's page streams into dir. A stream
// over its bound calls fail with the reason, which failure then returns.
func (in *incoming) receivePages(ctx context.Context, dir string, fail context.CancelCauseFunc) *pageReceiver {
	ctx, cancel := context.WithCancel(ctx)
	r := &pageReceiver{dir: dir, criu: in.srv.cfg.CRIU, cancel: cancel}
	estimate := in.pre.Sizes.Memory
	over := func(err error) {
		r.mu.Lock()
		r.over = err
		r.mu.Unlock()
		fail(err)
	}
	go func() {
		err := in.sess.ServeTunnelTo(ctx, protocol.TunnelPages, r.dial, transfer.TunnelOptions{
			FromPeer: func(rd io.Reader) io.Reader {
				return &boundedReader{r: rd, limit: allowance(estimate), estimate: estimate, over: over}
			},
		})
		if ctx.Err() == nil {
			in.log.Warn("page stream", "err", err)
		}
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
		r.stopServer()
	}()
	return r
}

// dial starts a page server for a new attempt and returns the agent's end
// of its socket.
func (r *pageReceiver) dial(context.Context) (net.Conn, error) {
	r.stopServer() // a failed attempt's
	if err := os.RemoveAll(r.dir); err != nil {
		return nil, err
	}
	if err := os.Mkdir(r.dir, 0o700); err != nil {
		return nil, err
	}
	mine, theirs, err := criu.SocketPair()
	if err != nil {
		return nil, err
	}
	defer mine.Close()
	ps, err := criu.StartPageServer(r.criu, r.dir, theirs)
	theirs.Close()
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.ps = ps
	r.mu.Unlock()
	return net.FileConn(mine)
}

func (r *pageReceiver) stopServer() {
	r.mu.Lock()
	ps := r.ps
	r.mu.Unlock()
	if ps != nil {
		select {
		case <-ps.Done():
		default:
			ps.Stop()
		}
	}
}

// stop ends the receiver: no more streams are taken, and a page server
// still running is killed.
func (r *pageReceiver) stop() {
	r.cancel()
	r.stopServer()
}

// place waits for the page server of the last attempt to finish and moves
// the pages it wrote into images (the images have arrived, so the dump
// had sent every page). A page server that did not exit cleanly, or pages
// that would replace a file the images brought, fail the migration.
func (r *pageReceiver) place(images string) error {
	r.mu.Lock()
	ps, err := r.ps, r.err
	r.mu.Unlock()
	if ps == nil {
		if err == nil {
			err = errors.New("the source sent none")
		}
		return fmt.Errorf("memory pages: %w", err)
	}
	select {
	case <-ps.Done():
	case <-time.After(pageServerExit):
		ps.Stop()
		return fmt.Errorf("memory pages: the page server had not finished %v after the images arrived", pageServerExit)
	}
	if err := ps.Err(); err != nil {
		return fmt.Errorf("memory pages: %w", err)
	}
	files, err := criu.PageFiles(r.dir)
	if err != nil {
		return fmt.Errorf("memory pages: %w", err)
	}
	for _, f := range files {
		err := unix.Renameat2(unix.AT_FDCWD, filepath.Join(r.dir, f), unix.AT_FDCWD, filepath.Join(images, f), unix.RENAME_NOREPLACE)
		if err != nil {
			return fmt.Errorf("memory pages: move %s into the images: %w", f, err)
		}
	}
	return nil
}

// boundedReader fails once more than limit bytes were read through it;
// limit is allowance(estimate), estimate the source's.
// over, if set, hears of it.
type boundedReader struct {
	r                     io.Reader
	read, limit, estimate int64
	over                  func(error)
}

func (b *boundedReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if b.read += int64(n); b.read > b.limit {
		err := fmt.Errorf("the page stream carried more than %s (%s)", cli.Size(b.limit), overAllowance("it", b.estimate))
		if b.over != nil {
			b.over(err)
		}
		return 0, err
	}
	return n, err
}
