package migrate

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dockmove/dockmove/internal/lab/labtest"
)

// This test process holds a deleted 2 MiB file open: it is found with its
// size, counted once though open twice, and refused under a 1 MiB limit
// with its name, accepted under a 4 MiB one. Real files and /proc.
func TestDeletedOpenFilesAreFoundAndLimited(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rotated.log")
	if err := os.WriteFile(path, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	var found []ghostFile
	for _, g := range deletedOpenFiles(os.Getpid()) {
		if g.path == path {
			found = append(found, g)
		}
	}
	if len(found) != 1 || found[0].size != 2<<20 {
		t.Fatalf("found %+v, want the file once with 2 MiB", found)
	}
	if ghostBytes(os.Getpid()) < 2<<20 {
		t.Fatal("ghost bytes do not count the file")
	}
	err := checkGhosts(os.Getpid(), 1<<20)
	if !errors.Is(err, ErrCannotMove) || !strings.Contains(err.Error(), path) {
		t.Fatalf("under a 1 MiB limit: %v", err)
	}
	if err := checkGhosts(os.Getpid(), 4<<20); err != nil && strings.Contains(err.Error(), path) {
		t.Fatalf("under a 4 MiB limit: %v", err)
	}
}

// A process of another user is refused before anything is frozen when
// this host's root cannot read its resource limits (no CAP_SYS_RESOURCE,
// as on the lab's machine), naming it; with the capability, or for this
// user's own processes, or with a CRIU that reads limits from /proc,
// nothing is refused. Real processes and /proc; the capability and the
// CRIU's answer are faked (stockCRIU, procCRIU).
func TestLimitsReadableOrRefusedWithFakeCRIU(t *testing.T) {
	labtest.RequireRoot(t)
	start := func(cred *syscall.Credential) *exec.Cmd {
		cmd := exec.Command("sleep", "60")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	self, err := procStatus("self")
	if err != nil {
		t.Fatal(err)
	}
	capable := hasCap(self, capSysResource)
	mine := start(nil)
	if err := checkLimitsReadable(mine.Process.Pid, procStatus, stockCRIU); err != nil {
		t.Fatalf("a process of this user: %v", err)
	}
	nobody := start(&syscall.Credential{Uid: 65534, Gid: 65534})
	err = checkLimitsReadable(nobody.Process.Pid, procStatus, stockCRIU)
	if capable && err != nil {
		t.Fatalf("with CAP_SYS_RESOURCE: %v", err)
	}
	if !capable && (!errors.Is(err, ErrCannotMove) || !strings.Contains(err.Error(), "sleep (pid ") || !strings.Contains(err.Error(), "uid 65534/65534/65534")) {
		t.Fatalf("without CAP_SYS_RESOURCE, a process of another user: %v", err)
	}
	// With the capability (faked in this process's status) it is never
	// refused.
	withCap := func(pid string) (string, error) {
		st, err := procStatus(pid)
		if pid == "self" {
			st = strings.Replace(st, "CapEff:", "CapEff:\t0000000001000000\nOld:", 1)
		}
		return st, err
	}
	if err := checkLimitsReadable(nobody.Process.Pid, withCap, stockCRIU); err != nil {
		t.Fatalf("with CAP_SYS_RESOURCE (fake status): %v", err)
	}
	asked := false
	procCRIU := func() bool { asked = true; return true }
	if err := checkLimitsReadable(nobody.Process.Pid, procStatus, procCRIU); err != nil {
		t.Fatalf("with a CRIU that reads /proc/PID/limits: %v", err)
	}
	if asked != !capable {
		t.Fatalf("CRIU asked %v, want it asked only without the capability (capable %v)", asked, capable)
	}
}

// stockCRIU is a CRIU that reads limits only with prlimit().
func stockCRIU() bool { return false }
