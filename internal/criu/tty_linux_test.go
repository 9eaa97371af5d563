package criu

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ptyHolderEnv makes this test binary, started again with it set to a
// report file, the pty holder of TestFailedDumpGivesPtyDataBack.
const ptyHolderEnv = "DOCKMOVE_TEST_PTY_HOLDER"

func init() {
	if report := os.Getenv(ptyHolderEnv); report != "" {
		if err := holdPty(report); err != nil {
			fmt.Fprintln(os.Stderr, "pty holder:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// holdPty opens a raw pseudo-terminal pair, queues bytes in both
// directions, and on each SIGUSR1 writes to report what each end would
// read and whether it is non-blocking; it ready-marks report first.
func holdPty(report string) error {
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	mfd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		return err
	}
	n, err := unix.IoctlGetInt(mfd, unix.TIOCGPTN)
	if err != nil {
		return err
	}
	slave, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	sfd := int(slave.Fd())
	tio, err := unix.IoctlGetTermios(sfd, unix.TCGETS)
	if err != nil {
		return err
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag = tio.Cflag&^(unix.CSIZE|unix.PARENB) | unix.CS8
	if err := unix.IoctlSetTermios(sfd, unix.TCSETS, tio); err != nil {
		return err
	}
	if _, err := unix.Write(mfd, []byte("queued-for-the-slave")); err != nil {
		return err
	}
	if _, err := unix.Write(sfd, []byte("queued-for-the-master")); err != nil {
		return err
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	if err := os.WriteFile(report, []byte("ready\n"), 0o600); err != nil {
		return err
	}
	for range usr1 {
		var out []string
		for _, end := range []struct {
			name string
			fd   int
		}{{"slave", sfd}, {"master", mfd}} {
			fl, err := unix.FcntlInt(uintptr(end.fd), unix.F_GETFL, 0)
			if err != nil {
				return err
			}
			unix.SetNonblock(end.fd, true)
			buf := make([]byte, 256)
			n, err := unix.Read(end.fd, buf)
			data := string(buf[:max(n, 0)])
			if errors.Is(err, unix.EAGAIN) {
				data = "EAGAIN"
			}
			unix.FcntlInt(uintptr(end.fd), unix.F_SETFL, fl)
			out = append(out, fmt.Sprintf("%s nonblock=%v data=%s", end.name, fl&unix.O_NONBLOCK != 0, data))
		}
		if err := os.WriteFile(report, []byte(strings.Join(out, "\n")+"\n"), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// TestFailedDumpGivesPtyDataBack: a dump that the post-dump notification
// refuses (dockmove's rollback after a completed dump) resumes the process
// with the bytes queued in its pseudo-terminals still there and its ptys
// blocking as before. Stock CRIU reads the queues at the dump and writes
// them back only when the tasks are left running: the resumed process read
// EAGAIN where data had been queued; the CRIU scripts/deps.sh builds
// (scripts/criu-patches/tty-writeback-on-failed-dump.patch) gives them
// back.
func TestFailedDumpGivesPtyDataBack(t *testing.T) {
	requireCRIU(t)
	report := filepath.Join(t.TempDir(), "report")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), ptyHolderEnv+"="+report)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	read := func(want string) string {
		deadline := time.Now().Add(30 * time.Second)
		for {
			b, _ := os.ReadFile(report)
			if strings.Contains(string(b), want) {
				return string(b)
			}
			select {
			case <-exited:
				t.Fatalf("the pty holder exited (%v)", cmd.ProcessState)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the holder's report: %q", want, b)
			}
		}
	}
	read("ready")

	dir := t.TempDir()
	refused := errors.New("the destination refused (a test)")
	_, err := Dump("", dir, DumpSpec{Pid: cmd.Process.Pid, Process: true}, DumpHooks{PostDump: func() error { return refused }})
	if err == nil {
		t.Fatal("a dump whose post-dump notification failed succeeded")
	}
	select {
	case <-exited:
		t.Fatalf("the process did not survive the failed dump: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	os.Remove(report)
	cmd.Process.Signal(syscall.SIGUSR1)
	got := read("master")
	want := "slave nonblock=false data=queued-for-the-slave\nmaster nonblock=false data=queued-for-the-master\n"
	if got != want {
		t.Fatalf("after the failed dump the ptys say:\n%swant:\n%s", got, want)
	}
}
