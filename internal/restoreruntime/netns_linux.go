package restoreruntime

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The container's network namespace during a restore.
//
// The source dumps the container's network namespace as external (CRIU
// key NetnsKey, runc's own convention for a namespace given by path), so
// the restored processes enter a namespace the destination provides. The
// runtime makes one and names it in the bundle's config.json; runc hands
// it to CRIU. Who wires it then depends on the Docker version:
//
//   - Docker up to 25 configures the network from an OCI prestart hook,
//     which runc runs inside the restore, before CRIU restores sockets.
//   - Docker 26 and later configure the namespace of the task's PID after
//     `create` returns, and `create` is where the restore runs. CRIU then
//     restores established TCP connections into a namespace with no
//     address and no route ("Can't connect inet socket back: Network is
//     unreachable"), the failure that breaks Docker's own checkpoint on
//     those versions. For that case the runtime gives the namespace a
//     temporary interface holding the container's addresses, with routes
//     less specific than any Docker adds, and removes it at `start`, when
//     Docker has wired the real one.

// NetnsKey is the key under which CRIU expects the container's network
// namespace, the one runc uses for a namespace given by path.
const NetnsKey = "extRootNetNS"

// RestoreIface is the temporary interface's name (one end of a veth pair;
// removing it removes both).
const RestoreIface = "dmrestore0"

const (
	netnsFile   = "netns"    // the bind mount of the prepared namespace
	pidFileName = "pid"      // the restored container's PID
	ifaceMark   = "tmpiface" // present while RestoreIface may exist
)

// prepareNetns makes a network namespace with loopback up, bind-mounted at
// dir/netns, and returns that path. With addrs, it also gets RestoreIface
// holding them (see above).
func prepareNetns(dir string, addrs []string) (path string, err error) {
	ips := make([]net.IP, 0, len(addrs))
	for _, a := range addrs {
		ip := net.ParseIP(a)
		if ip == nil {
			return "", fmt.Errorf("%w: address %q", ErrBadPlan, a)
		}
		ips = append(ips, ip)
	}
	path = filepath.Join(dir, netnsFile)
	releaseNetns(dir)
	ns, err := newNetns()
	if err != nil {
		return "", err
	}
	defer ns.Close()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return "", err
	}
	f.Close()
	if err := unix.Mount("/proc/self/fd/"+strconv.Itoa(int(ns)), path, "", unix.MS_BIND, ""); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("bind network namespace: %w", err)
	}
	defer func() {
		if err != nil {
			releaseNetns(dir)
		}
	}()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return "", err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		return "", fmt.Errorf("loopback: %w", err)
	}
	if len(ips) == 0 {
		return path, nil
	}
	if err := os.WriteFile(filepath.Join(dir, ifaceMark), nil, 0o600); err != nil {
		return "", err
	}
	// A veth pair with both ends here: every kernel that runs Docker has
	// veth (some lack the dummy driver), and its carrier is up.
	pair := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: RestoreIface}, PeerName: RestoreIface + "p"}
	if err := h.LinkAdd(pair); err != nil {
		return "", fmt.Errorf("temporary interface: %w", err)
	}
	link, err := h.LinkByName(RestoreIface)
	if err == nil {
		err = h.LinkSetUp(link)
	}
	if err == nil {
		var peer netlink.Link
		if peer, err = h.LinkByName(pair.PeerName); err == nil {
			err = h.LinkSetUp(peer)
		}
	}
	for _, ip := range ips {
		a := &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(32, 32)}}
		if ip.To4() == nil {
			// Usable at once: no duplicate address detection, which
			// would keep it tentative while CRIU restores its sockets.
			// And no route of its own in the main table, as an IPv4 /32
			// has none: Docker 28 refuses to program the address on the
			// real interface over a route to it.
			a.IPNet.Mask, a.Flags = net.CIDRMask(128, 128), unix.IFA_F_NODAD|unix.IFA_F_NOPREFIXROUTE
		}
		if err == nil {
			err = h.AddrAdd(link, a)
		}
	}
	// IPv4: two halves of the address space, more specific than the
	// default route Docker adds, gone with the interface.
	// IPv6: Docker 28 refuses to put an address on the real interface
	// where a main-table route covers it, so the halves go in a table of
	// their own, looked up after the main one: they serve only until
	// Docker has wired the namespace.
	type half struct {
		cidr  string
		table int
	}
	var halves []half
	if hasFamily(ips, true) {
		halves = append(halves, half{"0.0.0.0/1", unix.RT_TABLE_MAIN}, half{"128.0.0.0/1", unix.RT_TABLE_MAIN})
	}
	if hasFamily(ips, false) {
		halves = append(halves, half{"::/1", restoreTable}, half{"8000::/1", restoreTable})
		if err == nil {
			rule := netlink.NewRule()
			rule.Family, rule.Table, rule.Priority = netlink.FAMILY_V6, restoreTable, restoreRulePriority
			err = h.RuleAdd(rule)
		}
	}
	for _, hf := range halves {
		_, dst, _ := net.ParseCIDR(hf.cidr)
		if err == nil {
			err = h.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: dst, Scope: netlink.SCOPE_LINK, Table: hf.table})
		}
	}
	if err != nil {
		return "", fmt.Errorf("temporary interface: %w", err)
	}
	return path, nil
}

// The routing table of the temporary interface's IPv6 routes, and the
// priority of the rule that looks it up: after the main table (32766).
const (
	restoreTable        = 4242
	restoreRulePriority = 32767
)

// hasFamily reports whether ips holds an IPv4 address (v4) or an IPv6 one.
func hasFamily(ips []net.IP, v4 bool) bool {
	for _, ip := range ips {
		if (ip.To4() != nil) == v4 {
			return true
		}
	}
	return false
}

// newNetns creates a network namespace and returns a handle on it, leaving
// the calling thread in its own.
func newNetns() (netns.NsHandle, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return 0, err
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		return 0, fmt.Errorf("new network namespace: %w", err)
	}
	if err := netns.Set(orig); err != nil {
		// This thread must not go back to the scheduler in the wrong
		// namespace: keep it locked so it dies with the goroutine.
		runtime.LockOSThread()
		ns.Close()
		return 0, fmt.Errorf("back to the runtime's network namespace: %w", err)
	}
	return ns, nil
}

// releaseNetns unmounts and removes dir/netns; the restored processes keep
// the namespace alive.
func releaseNetns(dir string) {
	path := filepath.Join(dir, netnsFile)
	unix.Unmount(path, unix.MNT_DETACH)
	os.Remove(path)
}

// recordPID keeps the restored container's PID (from runc's pid file) for
// `start`.
func recordPID(dir, pidFile string) error {
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, pidFileName), []byte(strings.TrimSpace(string(data))), 0o600)
}

// dropRestoreIface removes RestoreIface from the restored container's
// namespace, once Docker has wired the real interfaces.
func dropRestoreIface(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, ifaceMark)); err != nil {
		return nil
	}
	pid, err := readPID(filepath.Join(dir, pidFileName))
	if err != nil {
		return err
	}
	h, err := netlinkOf(pid)
	if err != nil {
		return err
	}
	defer h.Close()
	rules, _ := h.RuleList(netlink.FAMILY_V6)
	for _, r := range rules {
		if r.Table == restoreTable {
			r.Family = netlink.FAMILY_V6
			h.RuleDel(&r) // its routes go with the interface
		}
	}
	link, err := h.LinkByName(RestoreIface)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return os.Remove(filepath.Join(dir, ifaceMark))
	}
	if err == nil {
		err = h.LinkDel(link)
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", RestoreIface, err)
	}
	return os.Remove(filepath.Join(dir, ifaceMark))
}

// dropLocalDelivery removes the local routing rules (table local, both
// families) from the network namespace of pid: nothing there is delivered
// locally or answered any more. A namespace whose rules were never changed
// takes a shortcut that looks the local table up without asking its rules
// (IPv6 does: fib6_rule_lookup while fib6_has_custom_rules is false, which
// deleting a rule leaves as it is: measured on 6.18, a reservation's
// namespace still reset an IPv6 client's connection), so a rule is added
// too: a second lookup of the main table, which changes no route but makes
// the kernel follow the rules.
func dropLocalDelivery(pid int) error {
	h, err := netlinkOf(pid)
	if err != nil {
		return err
	}
	defer h.Close()
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rules, err := h.RuleList(family)
		if err != nil {
			if family == netlink.FAMILY_V6 && errors.Is(err, unix.EAFNOSUPPORT) {
				continue // a kernel without IPv6
			}
			return err
		}
		for _, r := range rules {
			if r.Table != unix.RT_TABLE_LOCAL {
				continue
			}
			r.Family = family
			if err := h.RuleDel(&r); err != nil {
				return fmt.Errorf("remove the local routing rule: %w", err)
			}
		}
		main := netlink.NewRule()
		main.Family, main.Table, main.Priority = family, unix.RT_TABLE_MAIN, customMainPriority
		if err := h.RuleAdd(main); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add a routing rule: %w", err)
		}
	}
	return nil
}

// customMainPriority is the priority of the rule dropLocalDelivery adds:
// just before the default rule for the main table (32766).
const customMainPriority = 32765

// netlinkOf opens a netlink handle in the network namespace of pid.
func netlinkOf(pid int) (*netlink.Handle, error) {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	return netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
}

// readPID reads a PID file (runc's, or the runtime's own).
func readPID(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return 0, fmt.Errorf("pid file %s: %w", path, err)
	}
	return pid, nil
}
