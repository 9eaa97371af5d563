package criu

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/internal/lab/labtest"
)

// TestNFTablesLockIsRemoved has the real CRIU dump a process in a network
// namespace of its own with the nftables lock and leave it stopped, as a
// lazy dump whose page transfer failed leaves a container: the lock is
// there (CRIU's table, and loopback traffic in that namespace is dropped),
// UnlockNetwork removes it and traffic flows again.
func TestNFTablesLockIsRemoved(t *testing.T) {
	labtest.RequireRoot(t)
	bin, err := exec.LookPath("criu")
	labtest.SkipUnless(t, err == nil, "criu in PATH (make deps installs it)")
	labtest.SkipUnless(t, checkFeature(t.Context(), bin, "nftables"), "a CRIU built with nftables (make deps builds one)")
	tree := exec.Command("unshare", "--net", "sh", "-c", "ip link set lo up && exec sleep 60")
	tree.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := tree.Start(); err != nil {
		t.Fatal(err)
	}
	pid := tree.Process.Pid
	t.Cleanup(func() { tree.Process.Kill(); tree.Wait() })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tree never started sleeping in its namespace")
		}
	}
	if err := loopbackWorks(pid); err != nil {
		t.Fatalf("before the dump: %v", err)
	}
	dir := t.TempDir()
	out, err := exec.Command(bin, "dump", "-t", strconv.Itoa(pid), "-D", dir, "-o", "dump.log",
		"--leave-stopped", "--network-lock", "nftables").CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "dump.log"))
		t.Fatalf("criu dump: %v: %s\n%s", err, out, log)
	}
	tables, err := LockTables(pid)
	if err != nil || len(tables) != 1 || !strings.HasPrefix(tables[0], nftLockPrefix) {
		t.Fatalf("lock tables after the dump: %q, %v; want one %s... table", tables, err, nftLockPrefix)
	}
	if err := loopbackWorks(pid); err == nil {
		t.Fatal("traffic flows in the locked namespace")
	}
	if err := UnlockNetwork(pid); err != nil {
		t.Fatal(err)
	}
	if tables, err := LockTables(pid); err != nil || len(tables) != 0 {
		t.Fatalf("lock tables after UnlockNetwork: %q, %v", tables, err)
	}
	if err := loopbackWorks(pid); err != nil {
		t.Fatalf("after UnlockNetwork: %v", err)
	}
	if err := UnlockNetwork(pid); err != nil {
		t.Fatalf("a second unlock, with no lock left: %v", err)
	}
}

// loopbackWorks connects over loopback in pid's network namespace and
// sends a byte.
func loopbackWorks(pid int) error {
	ns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		return err
	}
	defer ns.Close()
	home, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return err
	}
	defer home.Close()
	done := make(chan error, 1)
	go func() {
		// The thread goes back home before it is unlocked; if it cannot,
		// it stays locked and dies with the goroutine.
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		err := dialOnce()
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

func dialOnce() error {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	c, err := net.DialTimeout("tcp4", ln.Addr().String(), 500*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte{1})
	return err
}
