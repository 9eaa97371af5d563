package lazypages

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ownedListener accepts only connections made by the process whose PID is
// set in pid: the page tunnel's entrance listens on loopback, where any
// local user could connect before the lazy-pages daemon does, read the
// container's memory, and (closing cleanly) make the source's CRIU take
// every page for delivered. Other connections are closed and reported.
type ownedListener struct {
	net.Listener
	pid      atomic.Int64
	started  chan struct{} // closed once pid is set
	once     sync.Once
	rejected func(addr string, err error)
}

func newOwnedListener(ln net.Listener, rejected func(addr string, err error)) *ownedListener {
	return &ownedListener{Listener: ln, started: make(chan struct{}), rejected: rejected}
}

// setPid names the one process whose connections are accepted.
func (l *ownedListener) setPid(pid int) {
	l.pid.Store(int64(pid))
	l.once.Do(func() { close(l.started) })
}

// daemonStartWait bounds how long a connection waits for the daemon's PID
// to be known: the daemon connects as soon as it runs, which can be before
// the agent that started it has recorded its PID.
const daemonStartWait = 5 * time.Second

func (l *ownedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case <-l.started:
		case <-time.After(daemonStartWait):
		}
		pid := int(l.pid.Load())
		if pid == 0 {
			err = fmt.Errorf("connection before the lazy-pages daemon started")
		} else {
			err = connOwnedByRetried(c, pid)
		}
		if err == nil {
			return c, nil
		}
		c.Close()
		if l.rejected != nil {
			l.rejected(c.RemoteAddr().String(), err)
		}
	}
}

// ownerLookups is how many times a connection's owner is looked up before
// it is refused: a TCP table is read in pieces while it changes,
// and a busy host's reading can miss a socket that is there. Refusing the
// daemon's own connection would leave it to die (CRIU's lazy-pages daemon
// takes a close of its page-server connection for a BUG) and the restore
// with it.
const ownerLookups = 5

// connOwnedByRetried is connOwnedBy, looked up again after a miss.
func connOwnedByRetried(c net.Conn, pid int) error {
	var err error
	for i := range ownerLookups {
		if err = connOwnedBy(c, pid); err == nil {
			return nil
		}
		time.Sleep(time.Duration(i+1) * 10 * time.Millisecond)
	}
	return err
}

// connOwnedBy checks that the client end of c, an accepted TCP/IPv4
// connection, is a socket held open by process pid: its inode is found in
// pid's TCP table and among its descriptors.
func connOwnedBy(c net.Conn, pid int) error {
	local, ok1 := c.RemoteAddr().(*net.TCPAddr)
	remote, ok2 := c.LocalAddr().(*net.TCPAddr)
	if !ok1 || !ok2 || local.IP.To4() == nil || remote.IP.To4() == nil {
		return fmt.Errorf("not a TCP/IPv4 connection: %v", c.RemoteAddr())
	}
	// The table of the daemon's network namespace, not /proc/net: that
	// is the main thread's, which a goroutine that entered a container's
	// namespace may have left there (Go parks, and never ends, a main
	// thread whose locked goroutine exits).
	inode, err := socketInode(filepath.Join("/proc", strconv.Itoa(pid), "net", "tcp"), procAddr(local), procAddr(remote))
	if err != nil {
		return err
	}
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("descriptors of pid %d: %w", pid, err)
	}
	want := "socket:[" + inode + "]"
	for _, e := range ents {
		if t, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && t == want {
			return nil
		}
	}
	return fmt.Errorf("the connection from %v is not the lazy-pages daemon's (pid %d)", local, pid)
}

// procAddr renders an IPv4 address as /proc/net/tcp does: the address as a
// native-endian (little-endian here) 32-bit word in hex, then the port.
func procAddr(a *net.TCPAddr) string {
	return fmt.Sprintf("%08X:%04X", binary.LittleEndian.Uint32(a.IP.To4()), a.Port)
}

// socketInode finds the inode of the socket with local address local and
// remote address remote in a /proc/net/tcp table.
func socketInode(table, local, remote string) (string, error) {
	f, err := os.Open(table)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 10 && fields[1] == local && fields[2] == remote {
			return fields[9], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("no socket %s -> %s in %s", local, remote, table)
}
