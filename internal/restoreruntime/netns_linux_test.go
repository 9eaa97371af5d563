package restoreruntime

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/internal/lab/labtest"
)

// A restore on Docker 26+ gets a namespace holding the container's address
// on a temporary interface, routes to everywhere through it, and loopback
// up; `start` removes the interface from the restored process's namespace.
// Real kernel objects, no fakes (needs root).
func TestRestoreNetnsHoldsTheAddressUntilStart(t *testing.T) {
	labtest.RequireRoot(t)
	dir := t.TempDir()
	path, err := prepareNetns(dir, []string{"10.99.0.7", "fd99::7"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { releaseNetns(dir) })
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil || lo.Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("loopback not up: %v %v", lo, err)
	}
	link, err := h.LinkByName(RestoreIface)
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := h.AddrList(link, netlink.FAMILY_V4)
	if len(addrs) != 1 || addrs[0].IP.String() != "10.99.0.7" {
		t.Fatalf("addresses on %s: %v", RestoreIface, addrs)
	}
	// CRIU's connect-back needs a route to any peer.
	routes, err := h.RouteGet(net.ParseIP("192.0.2.1"))
	if err != nil || len(routes) == 0 || routes[0].LinkIndex != link.Attrs().Index {
		t.Fatalf("route to a peer: %v %v", routes, err)
	}
	// The IPv6 address is usable at once (no DAD), and has no route of
	// its own in the main table, which Docker 28 would take for a clash
	// with the address it puts on the real interface.
	addrs6, _ := h.AddrList(link, netlink.FAMILY_V6)
	found := false
	for _, a := range addrs6 {
		if a.IP.String() == "fd99::7" {
			found = a.Flags&unix.IFA_F_TENTATIVE == 0
		}
	}
	if !found {
		t.Fatalf("IPv6 addresses on %s: %+v (want fd99::7, not tentative)", RestoreIface, addrs6)
	}
	main, _ := h.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	for _, r := range main {
		if r.Dst != nil && (r.Dst.Contains(net.ParseIP("fd99::7")) || r.Dst.IP.IsUnspecified()) {
			t.Fatalf("a main-table route covering the address: %+v", r)
		}
	}
	if routes, err := h.RouteGet(net.ParseIP("2001:db8::1")); err != nil || len(routes) == 0 || routes[0].LinkIndex != link.Attrs().Index {
		t.Fatalf("route to an IPv6 peer: %v %v", routes, err)
	}

	// A process in the namespace stands in for the restored container.
	sleeper := exec.Command("nsenter", "--net="+path, "sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	pidFile := filepath.Join(t.TempDir(), "pid")
	os.WriteFile(pidFile, []byte(strconv.Itoa(sleeper.Process.Pid)+"\n"), 0o600)
	waitInNetns(t, sleeper.Process.Pid, path)
	if err := recordPID(dir, pidFile); err != nil {
		t.Fatal(err)
	}
	releaseNetns(dir)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the namespace's bind mount is still there: %v", err)
	}
	if err := dropRestoreIface(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := h.LinkByName(RestoreIface); err == nil {
		t.Fatal("the temporary interface survived start")
	}
	rules, _ := h.RuleList(netlink.FAMILY_V6)
	for _, r := range rules {
		if r.Table == restoreTable {
			t.Fatalf("the temporary interface's routing rule survived start: %+v", r)
		}
	}
	if err := dropRestoreIface(dir); err != nil {
		t.Fatalf("a second start: %v", err)
	}
}

func waitInNetns(t *testing.T, pid int, path string) {
	t.Helper()
	var want, got os.FileInfo
	want, _ = os.Stat(path)
	for i := 0; i < 200; i++ {
		if got, _ = os.Stat("/proc/" + strconv.Itoa(pid) + "/ns/net"); got != nil && os.SameFile(want, got) {
			return
		}
		exec.Command("sleep", "0.01").Run()
	}
	t.Fatalf("process %d never entered %s", pid, path)
}

func TestBundleNamespacePathAndHooks(t *testing.T) {
	for _, c := range []struct {
		name, spec string
		hooks, ok  bool
	}{
		{"docker-28", `{"linux":{"namespaces":[{"type":"mount"},{"type":"network"}]}}`, false, true},
		{"docker-20.10", `{"hooks":{"prestart":[{"path":"/proc/1/exe","args":["libnetwork-setkey"]}]},"linux":{"namespaces":[{"type":"network"}]}}`, true, true},
		{"no-netns", `{"linux":{"namespaces":[{"type":"mount"}]}}`, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.json")
			os.WriteFile(path, []byte(c.spec), 0o644)
			var hooks bool
			err := editBundle(path, func(s *bundleSpec) error {
				hooks = s.hasPrestartHooks()
				return s.setNamespacePath("network", "/run/x/netns")
			})
			if hooks != c.hooks || (err == nil) != c.ok {
				t.Fatalf("hooks %v, err %v", hooks, err)
			}
			if !c.ok {
				return
			}
			var out struct {
				Linux struct {
					Namespaces []struct{ Type, Path string }
				}
			}
			data, _ := os.ReadFile(path)
			json.Unmarshal(data, &out)
			for _, ns := range out.Linux.Namespaces {
				if (ns.Type == "network") != (ns.Path == "/run/x/netns") {
					t.Fatalf("namespaces after edit: %s", data)
				}
			}
		})
	}
}

// A reservation's namespace delivers nothing locally once the runtime has
// cut it off: neither its address nor loopback resets a connection to a
// closed port any more, in either family. Real kernel objects (needs root).
func TestDropLocalDeliveryAnswersNothing(t *testing.T) {
	labtest.RequireRoot(t)
	dir := t.TempDir()
	path, err := prepareNetns(dir, []string{"10.99.0.9"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { releaseNetns(dir) })
	sleeper := exec.Command("nsenter", "--net="+path, "sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	waitInNetns(t, sleeper.Process.Pid, path)
	// A TCP connection to a port nobody listens on: refused (a reset)
	// while the namespace delivers locally.
	refused := func(addr string) bool {
		errc := make(chan error, 1)
		go func() {
			runtime.LockOSThread() // dies with the goroutine, in the namespace
			ns, err := netns.GetFromPath(path)
			if err == nil {
				err = netns.Set(ns)
				ns.Close()
			}
			if err != nil {
				errc <- err
				return
			}
			c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, "9"), time.Second)
			if err == nil {
				c.Close()
			}
			errc <- err
		}()
		return errors.Is(<-errc, unix.ECONNREFUSED)
	}
	for _, addr := range []string{"127.0.0.1", "10.99.0.9", "::1"} {
		if !refused(addr) {
			t.Fatalf("before: %s does not answer", addr)
		}
	}
	if err := dropLocalDelivery(sleeper.Process.Pid); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"127.0.0.1", "10.99.0.9", "::1"} {
		if refused(addr) {
			t.Fatalf("after: %s still answers", addr)
		}
	}
}
