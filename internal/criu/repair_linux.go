package criu

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ReleaseRepairedSockets takes the TCP sockets of the process tree rooted
// at pid out of repair mode and returns how many it released.
//
// A dump puts every established TCP socket of the tree in repair mode
// (the kernel neither sends nor acknowledges on it) and takes it out when
// the dump fails, except, in CRIU 4.2.1, when a lazy dump's page transfer
// fails: the original then resumes with its connections mute for ever
// (a writer fills the send queue and blocks, a reader waits). Released,
// each socket sends a window probe: a peer that still holds the
// connection carries on, one that lost it (the copy on the destination
// used it and was removed) answers with a reset and the application sees
// the connection end, as it would after any network failure.
//
// The sockets are reached through pidfd_getfd. The kernel tells a socket
// in repair mode by TCP_REPAIR_WINDOW, which it reads only in that mode;
// sockets not in it are left untouched. Turning repair off clears
// SO_REUSEADDR, which CRIU would restore from its images; that matters
// only to a later bind on the same port while the connection lives.
func ReleaseRepairedSockets(pid int) (int, error) { return repairedSockets(pid, true) }

// RepairedSockets counts the TCP sockets of the tree rooted at pid that
// are in repair mode, and leaves them so.
func RepairedSockets(pid int) (int, error) { return repairedSockets(pid, false) }

func repairedSockets(pid int, release bool) (int, error) {
	tree, err := processTree(pid)
	if err != nil {
		return 0, err
	}
	seen := map[string]bool{}
	released := 0
	var errs []error
	for _, p := range tree {
		n, err := releaseProcessSockets(p, seen, release)
		released += n
		if err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err) // a process that ended meanwhile has nothing left to release
		}
	}
	return released, errors.Join(errs...)
}

// releaseProcessSockets releases the repaired TCP sockets in pid's file
// table that are not in seen (by inode; descriptors are shared).
func releaseProcessSockets(pid int, seen map[string]bool, release bool) (int, error) {
	fdDir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		return 0, err
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return 0, fmt.Errorf("criu: pidfd of %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	released := 0
	for _, e := range entries {
		link, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err != nil || !strings.HasPrefix(link, "socket:[") || seen[link] {
			continue
		}
		seen[link] = true
		target, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fd, err := unix.PidfdGetfd(pidfd, target, 0)
		if err != nil {
			continue // closed meanwhile
		}
		ok, err := inRepair(fd), error(nil)
		if ok && release {
			err = repairOff(fd)
		}
		unix.Close(fd)
		if err != nil {
			return released, fmt.Errorf("criu: socket %s of process %d: %w", link, pid, err)
		}
		if ok {
			released++
		}
	}
	return released, nil
}

// repairOff turns TCP repair mode off on fd, with a window probe.
func repairOff(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_REPAIR, unix.TCP_REPAIR_OFF); err != nil {
		return fmt.Errorf("turn TCP repair mode off: %w", err)
	}
	return nil
}

// inRepair reports whether fd is a TCP socket in repair mode: the kernel
// answers TCP_REPAIR_WINDOW only then (EPERM otherwise; other sockets do
// not know the option).
func inRepair(fd int) bool {
	if p, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil || p != unix.IPPROTO_TCP {
		return false
	}
	var window [5]uint32 // struct tcp_repair_window
	size := uint32(unsafe.Sizeof(window))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_TCP, unix.TCP_REPAIR_WINDOW,
		uintptr(unsafe.Pointer(&window)), uintptr(unsafe.Pointer(&size)), 0)
	return errno == 0
}

// processTree lists pid and its descendants, as /proc shows them now.
func processTree(pid int) ([]int, error) {
	if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); err != nil {
		return nil, fmt.Errorf("criu: process %d: %w", pid, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if ppid, ok := parentOf(string(stat)); ok {
			children[ppid] = append(children[ppid], p)
		}
	}
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree, nil
}

// parentOf reads the parent's PID from a /proc/PID/stat line: the fourth
// field, counted after the command name's closing parenthesis (the name
// may hold spaces and parentheses).
func parentOf(stat string) (int, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	fields := strings.Fields(stat[i+1:])
	if len(fields) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(fields[1])
	return ppid, err == nil
}
