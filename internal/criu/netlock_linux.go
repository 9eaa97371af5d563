package criu

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// UnlockNetwork removes what CRIU does to a dumped tree's network to
// freeze its TCP traffic: the lock in its network namespace (the "CRIU"
// iptables chain, or the nftables table "inet CRIU-<run id>" of a dump
// with NFTablesLock) and repair mode on its TCP sockets
// (ReleaseRepairedSockets). CRIU 4.2.1 undoes both when a dump fails,
// except when a lazy dump's page transfer fails: the resumed container
// then stays cut off, its connections mute. Calling it where there is no
// lock is harmless.
func UnlockNetwork(pid int) error {
	err := errors.Join(unlockChain(pid), unlockTables(pid))
	if _, rerr := ReleaseRepairedSockets(pid); rerr != nil {
		err = errors.Join(err, fmt.Errorf("criu: take the tree's TCP sockets out of repair mode: %w", rerr))
	}
	return err
}

func unlockChain(pid int) error {
	ns := "--net=/proc/" + strconv.Itoa(pid) + "/ns/net"
	for _, bin := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(bin); err != nil {
			continue
		}
		if exec.Command("nsenter", ns, bin, "-w", "-S", "CRIU").Run() != nil {
			continue // no lock in this family
		}
		for _, args := range [][]string{{"-D", "INPUT", "-j", "CRIU"}, {"-D", "OUTPUT", "-j", "CRIU"}, {"-F", "CRIU"}, {"-X", "CRIU"}} {
			out, err := exec.Command("nsenter", append([]string{ns, bin, "-w"}, args...)...).CombinedOutput()
			if err != nil && args[0] != "-D" {
				return fmt.Errorf("criu: remove network lock (%s %s): %v: %s", bin, strings.Join(args, " "), err, out)
			}
		}
	}
	return nil
}

// nftLockPrefix begins the name of the inet table CRIU locks a network
// namespace with (net.c, nftables_get_table: "CRIU-" and the dump's run
// ID, or the root task's PID for images without one).
const nftLockPrefix = "CRIU-"

// LockTables names the nftables tables CRIU locks a network namespace
// with that are in pid's (none: an empty list).
func LockTables(pid int) ([]string, error) {
	var names []string
	err := withLockTables(pid, func(c *nftables.Conn, tables []*nftables.Table) error {
		for _, t := range tables {
			names = append(names, t.Name)
		}
		return nil
	})
	return names, err
}

// unlockTables deletes CRIU's nftables lock tables in pid's network
// namespace, through netlink (no nft program needed).
func unlockTables(pid int) error {
	return withLockTables(pid, func(c *nftables.Conn, tables []*nftables.Table) error {
		if len(tables) == 0 {
			return nil
		}
		for _, t := range tables {
			c.DelTable(t)
		}
		if err := c.Flush(); err != nil {
			return fmt.Errorf("criu: remove network lock: delete nftables table: %w", err)
		}
		return nil
	})
}

// withLockTables calls fn with a netlink connection to pid's network
// namespace and CRIU's lock tables there.
func withLockTables(pid int, fn func(*nftables.Conn, []*nftables.Table) error) error {
	ns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		return fmt.Errorf("criu: network lock: %w", err)
	}
	defer ns.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(ns.Fd())))
	if err != nil {
		return fmt.Errorf("criu: network lock: nftables: %w", err)
	}
	all, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		if errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.ENOENT) {
			return fn(c, nil) // no nftables in this kernel: no such lock either
		}
		return fmt.Errorf("criu: network lock: list nftables tables: %w", err)
	}
	var tables []*nftables.Table
	for _, t := range all {
		if strings.HasPrefix(t.Name, nftLockPrefix) {
			tables = append(tables, t)
		}
	}
	return fn(c, tables)
}
