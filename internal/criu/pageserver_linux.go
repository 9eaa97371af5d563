package criu

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Remote pages: a stop-and-copy dump sends the container's memory to CRIU's
// page server on the destination while it dumps, instead of writing it
// here and shipping it afterwards. Both CRIUs are handed one end of a
// connected socket (CRIU's --ps-socket; over RPC the page-server info's
// fd): nothing listens on a port, so no other local process can connect
// to either of them. Between the two ends, the agents carry the bytes
// through their session.

// PageServerLog is the log file a page server writes into its directory.
const PageServerLog = "page-server.log"

// SocketPair returns the two ends of a connected stream socket, both
// close-on-exec.
func SocketPair() (a, b *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	return os.NewFile(uintptr(fds[0]), "pages-a"), os.NewFile(uintptr(fds[1]), "pages-b"), nil
}

// PageServer is a `criu page-server` writing the pages of one dump into
// its directory.
type PageServer struct {
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartPageServer runs the criu binary at path ("" for PATH) as a page
// server that reads a dump's pages from conn (one end of SocketPair; the
// server takes its own copy, the caller keeps and closes conn) and writes
// them, as pagemap-*.img and pages-*.img, into dir.
func StartPageServer(path, dir string, conn *os.File) (*PageServer, error) {
	if path == "" {
		path = "criu"
	}
	cmd := exec.Command(path, "page-server", "--ps-socket", "3", "--images-dir", dir, "--log-file", PageServerLog, "-v4")
	// fd 3. (No parent-death signal: it would follow the thread that
	// forked, which Go may end; a server whose agent died reads the end
	// of its socket and exits.)
	cmd.ExtraFiles = []*os.File{conn}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("criu page-server: %w", err)
	}
	ps := &PageServer{dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() {
		if err := cmd.Wait(); err != nil {
			ps.err = NewError("page-server", filepath.Join(dir, PageServerLog), err)
		}
		close(ps.done)
	}()
	return ps, nil
}

// Done is closed when the page server has exited.
func (p *PageServer) Done() <-chan struct{} { return p.done }

// Err is the page server's outcome once Done is closed: nil when it
// exited cleanly, which it does only once the dump said it had sent
// every page.
func (p *PageServer) Err() error { <-p.done; return p.err }

// Stop kills the page server (a dump that will not finish) and waits for it.
func (p *PageServer) Stop() {
	p.cmd.Process.Kill()
	<-p.done
}

// PageFiles lists the files a page server wrote into dir that a restore
// reads (its log aside), and fails on anything else: the directory is the
// page server's alone, so anything unexpected there is not to be moved on.
func PageFiles(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		name := e.Name()
		switch {
		case name == PageServerLog:
			continue
		case !e.Type().IsRegular():
			return nil, fmt.Errorf("page server directory: %s is not a regular file", name)
		case isPageImage(name):
			out = append(out, name)
		default:
			return nil, fmt.Errorf("page server directory: unexpected file %s", name)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("page server directory: no pages arrived")
	}
	return out, nil
}

// isPageImage: pagemap-N.img, pagemap-shmem-N.img or pages-N.img, N
// decimal, as CRIU names them.
func isPageImage(name string) bool {
	for _, prefix := range []string{"pagemap-shmem-", "pagemap-", "pages-"} {
		if n, ok := strings.CutPrefix(name, prefix); ok {
			n, ok = strings.CutSuffix(n, ".img")
			return ok && n != "" && len(n) <= 20 && strings.Trim(n, "0123456789") == ""
		}
	}
	return false
}
