//go:build linux

package migrate

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// CRIU dumps the sockets of five families only (criu/sockets.c,
// dump_socket), and of the Internet ones only a few protocols
// (criu/sk-inet.c, can_dump_ipproto): any other socket in the tree fails
// the dump with the container frozen, and since Go 1.24 opens Multipath
// TCP listeners by default where the kernel has MPTCP, a Go service built
// today meets it. The source looks at every socket of the tree before the
// freeze (socketKind) and refuses the container naming each.

// socketKind says what kind of socket the domain, type and protocol (as
// SO_DOMAIN, SO_TYPE and SO_PROTOCOL report them) make, and whether
// CRIU can dump it: ok is false for a socket CRIU refuses, and what names
// it then.
func socketKind(domain, typ, proto int) (what string, ok bool) {
	switch domain {
	case unix.AF_UNIX:
		switch typ {
		case unix.SOCK_STREAM, unix.SOCK_DGRAM, unix.SOCK_SEQPACKET:
			return "", true
		}
		return fmt.Sprintf("a Unix socket of type %d", typ), false
	case unix.AF_INET, unix.AF_INET6:
		if typ == unix.SOCK_RAW {
			return "", true // any protocol inside a raw socket
		}
		switch proto {
		case unix.IPPROTO_IP, unix.IPPROTO_TCP, unix.IPPROTO_UDP, unix.IPPROTO_UDPLITE, unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6:
			return "", true
		case unix.IPPROTO_MPTCP:
			return mptcpSocket, false
		case unix.IPPROTO_SCTP:
			return "an SCTP socket", false
		case unix.IPPROTO_DCCP:
			return "a DCCP socket", false
		}
		return fmt.Sprintf("an Internet socket of protocol %d", proto), false
	case unix.AF_PACKET, unix.AF_NETLINK:
		return "", true
	}
	if name, found := socketFamilies[domain]; found {
		return "a socket of family " + name, false
	}
	return fmt.Sprintf("a socket of family %d", domain), false
}

// mptcpSocket is what socketKind calls a Multipath TCP socket.
const mptcpSocket = "a Multipath TCP socket"

// socketFamilies names the families a container may meet that CRIU does
// not dump.
var socketFamilies = map[int]string{
	unix.AF_ALG: "AF_ALG (the kernel's crypto API)", unix.AF_VSOCK: "AF_VSOCK", unix.AF_KEY: "AF_KEY (IPsec keys)",
	unix.AF_BLUETOOTH: "AF_BLUETOOTH", unix.AF_CAN: "AF_CAN", unix.AF_TIPC: "AF_TIPC", unix.AF_XDP: "AF_XDP",
	unix.AF_RDS: "AF_RDS", unix.AF_SMC: "AF_SMC", unix.AF_QIPCRTR: "AF_QIPCRTR", unix.AF_PPPOX: "AF_PPPOX",
}

// heldSocket is a socket of a process that CRIU cannot dump.
type heldSocket struct {
	pid, fd int
	comm    string
	what    string
}

// socketsError names the sockets CRIU cannot dump and says what to do.
func socketsError(held []heldSocket) error {
	var names []string
	mptcp := 0
	for _, h := range held {
		names = append(names, fmt.Sprintf("%s (pid %d here, %d inside) holds %s (descriptor %d)", h.comm, h.pid, nsPID(h.pid), h.what, h.fd))
		if h.what == mptcpSocket {
			mptcp++
		}
	}
	todo := "have the application close them (or run without them), then migrate again"
	if mptcp > 0 {
		todo = "turn Multipath TCP off for the application (a Go program: GODEBUG=multipathtcp=0 in its environment; Go 1.24 and later " +
			"open MPTCP listeners by default) or on this host (sysctl net.mptcp.enabled=0), then restart the container"
		if mptcp < len(held) {
			todo += "; have the application close the others"
		}
	}
	return fmt.Errorf("%w: %s; CRIU cannot dump such sockets, so the dump would fail with the container frozen: %s",
		ErrCannotMove, strings.Join(names, ", "), todo)
}

// unsupportedSockets lists the sockets of the tree rooted at pid that
// CRIU cannot dump. An error means they could not be looked at.
func unsupportedSockets(pid int) ([]heldSocket, error) {
	var held []heldSocket
	seen := map[string]bool{}
	for _, p := range tree(pid) {
		h, err := processSockets(p, seen)
		if err != nil {
			return nil, err
		}
		held = append(held, h...)
	}
	return held, nil
}

// processSockets lists the sockets of process p that CRIU cannot dump,
// those not in seen (the same socket shared is named once). It asks each
// socket itself: a copy of the process's descriptor (pidfd_getfd) answers
// SO_DOMAIN, SO_TYPE and SO_PROTOCOL and is closed again (the process
// keeps its own, so nothing happens to the socket).
func processSockets(p int, seen map[string]bool) ([]heldSocket, error) {
	// The pidfd first: the descriptors listed next are then this
	// process's, not those of a process that took its PID meanwhile.
	pidfd, err := unix.PidfdOpen(p, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil, nil // gone
	} else if err != nil {
		return nil, fmt.Errorf("pidfd_open of pid %d: %w", p, err)
	}
	defer unix.Close(pidfd)
	dir := fmt.Sprintf("/proc/%d/fd", p)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil // gone
	}
	var held []heldSocket
	for _, e := range fds {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || !strings.HasPrefix(target, "socket:[") || seen[target] {
			continue
		}
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		what, ok, err := askSocket(pidfd, n, target)
		if err != nil {
			return nil, fmt.Errorf("pid %d's descriptor %d: %w", p, n, err)
		}
		if what == "" && ok {
			continue // closed, or no longer that socket
		}
		seen[target] = true
		if !ok {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
			held = append(held, heldSocket{pid: p, fd: n, comm: strings.TrimSpace(string(comm)), what: what})
		}
	}
	return held, nil
}

// askSocket copies descriptor n of the process behind pidfd, which was
// target ("socket:[INODE]"), and asks it what socketKind says. A
// descriptor closed meanwhile, or now another file, gives "" and ok.
func askSocket(pidfd, n int, target string) (what string, ok bool, err error) {
	fd, err := unix.PidfdGetfd(pidfd, n, 0)
	if errors.Is(err, unix.EBADF) || errors.Is(err, unix.ESRCH) {
		return "", true, nil
	} else if err != nil {
		return "", false, fmt.Errorf("pidfd_getfd: %w", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || fmt.Sprintf("socket:[%d]", st.Ino) != target {
		return "", true, nil // reused for another file since it was listed
	}
	domain, err1 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	typ, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	proto, err3 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	if err := errors.Join(err1, err2, err3); err != nil {
		return "", false, err
	}
	what, ok = socketKind(domain, typ, proto)
	return what, ok, nil
}

// checkSockets refuses, before anything is frozen, a tree holding a
// socket CRIU cannot dump. Where the sockets cannot be looked at (a
// kernel before 5.6, a security module), it says so in the log and lets
// CRIU's dump find them.
func (s *source) checkSockets(pid int) error {
	held, err := unsupportedSockets(pid)
	if err != nil {
		s.log.Warn("could not look at the container's sockets before freezing; CRIU's dump will name any it cannot dump", "err", err)
		return nil
	}
	if len(held) == 0 {
		return nil
	}
	return socketsError(held)
}
