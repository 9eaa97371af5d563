package criu

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gocriu "github.com/checkpoint-restore/go-criu/v7"
	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"google.golang.org/protobuf/proto"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/lab/labtest"
	"github.com/dockmove/dockmove/internal/workload"
)

func requireCRIU(t *testing.T) Capabilities {
	t.Helper()
	labtest.RequireRoot(t)
	labtest.RequireBinary(t, "criu")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	caps, err := Probe(ctx, "")
	labtest.SkipUnless(t, err == nil, fmt.Sprintf("usable criu (run: make deps): %v", err))
	return caps
}

func TestProbeReportsVersionAndFeatures(t *testing.T) {
	caps := requireCRIU(t)
	if caps.Version < MinVersion {
		t.Fatalf("version %s below minimum", caps.VersionString())
	}
	// The CLI check is the reference the probe must agree with.
	for _, f := range []struct {
		name string
		got  bool
	}{{"mem_dirty_track", caps.MemTrack}, {"uffd-noncoop", caps.LazyPages}} {
		want := exec.Command("criu", "check", "--feature", f.name).Run() == nil
		if f.got != want {
			t.Errorf("probe says %s=%v, criu check says %v", f.name, f.got, want)
		}
	}
}

// buildWorkload compiles cmd/workload into a temporary directory.
func buildWorkload(t *testing.T) string {
	t.Helper()
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "workload")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/workload")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build workload: %v\n%s", err, out)
	}
	return bin
}

// startTree runs bin as the init of its own PID namespace and session (so
// a restore can reuse its PIDs), killed when the test ends; exited closes
// when it ends.
func startTree(t *testing.T, bin string, args ...string) (cmd *exec.Cmd, exited chan struct{}) {
	t.Helper()
	cmd = exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID, Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited = make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	return cmd, exited
}

// startWorkloadTree starts the workload with 16 MiB it keeps dirtying,
// as startTree, listening on a free loopback address, and waits for its
// counter to reach 100.
func startWorkloadTree(t *testing.T, ctx context.Context) (cmd *exec.Cmd, exited chan struct{}, addr string, before workload.Beat) {
	t.Helper()
	addr = freeLoopbackAddr(t)
	cmd, exited = startTree(t, buildWorkload(t), "--mem-mib", "16", "--dirty-pages-per-sec", "2000", "--tick", "2ms", "--verify-every", "0", "--listen", addr)
	before, err := waitStatus(ctx, addr, 100)
	if err != nil {
		t.Fatal(err)
	}
	return cmd, exited, addr, before
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitStatus polls the workload until it answers and its counter reaches min.
func waitStatus(ctx context.Context, addr string, min uint64) (workload.Beat, error) {
	for {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		b, err := workload.Query(qctx, addr, workload.CmdStatus)
		cancel()
		if err == nil && b.Counter >= min {
			return b, nil
		}
		select {
		case <-ctx.Done():
			return b, fmt.Errorf("workload at %s: counter %d < %d: %v (%w)", addr, b.Counter, min, err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

type restoredPID struct {
	gocriu.NoNotify
	pid int32
}

func (r *restoredPID) PostRestore(pid int32) error { r.pid = pid; return nil }

// TestCheckpointRestoreKeepsProcessState dumps a running workload process tree
// (its own PID namespace, so the restore can reuse its PIDs) with real CRIU
// through go-criu, restores it, and checks that its counter continued and its
// memory pattern verifies.
func TestCheckpointRestoreKeepsProcessState(t *testing.T) {
	requireCRIU(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, exited, addr, before := startWorkloadTree(t, ctx)

	dir := t.TempDir()
	dump := imageOpts(t, dir, "dump.log")
	dump.Pid = proto.Int32(int32(cmd.Process.Pid))
	if err := gocriu.MakeCriu().Dump(dump, nil); err != nil {
		t.Fatal(NewError("dump", filepath.Join(dir, "dump.log"), err))
	}
	select {
	case <-exited:
	case <-ctx.Done():
		t.Fatal("dumped process was not killed")
	}

	rst := imageOpts(t, dir, "restore.log")
	rst.RstSibling = proto.Bool(true)
	var got restoredPID
	if err := gocriu.MakeCriu().Restore(rst, &got); err != nil {
		t.Fatal(NewError("restore", filepath.Join(dir, "restore.log"), err))
	}
	if got.pid <= 0 {
		t.Fatal("restore reported no PID")
	}
	t.Cleanup(func() { killAndReap(int(got.pid)) })

	// The first answer decides: a process started afresh would answer with a
	// counter near zero, the restored one continues from before.Counter.
	after, err := waitStatus(ctx, addr, 0)
	if err != nil {
		t.Fatalf("restored process: %v", err)
	}
	if !after.Continues(before) {
		t.Fatalf("counter went from %d to %d: the process restarted instead of continuing", before.Counter, after.Counter)
	}
	verified, err := workload.Query(ctx, addr, workload.CmdVerify)
	if err != nil {
		t.Fatal(err)
	}
	if verified.Bad != 0 || verified.Pages != 16<<20/workload.PageSize || after.Dirtied < before.Dirtied {
		t.Fatalf("before dump %+v, after restore %+v, verify %+v", before, after, verified)
	}
	t.Logf("counter %d at dump, %d after restore; %d pages verified", before.Counter, after.Counter, verified.Pages)
}

func imageOpts(t *testing.T, dir, logFile string) *rpc.CriuOpts {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return &rpc.CriuOpts{
		ImagesDirFd: proto.Int32(int32(d.Fd())),
		LogFile:     proto.String(logFile),
		LogLevel:    proto.Int32(4),
	}
}

func killAndReap(pid int) {
	syscall.Kill(pid, syscall.SIGKILL)
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, 0, nil)
}

func TestNewErrorCarriesLogLines(t *testing.T) {
	log := filepath.Join(t.TempDir(), "x.log")
	lines := []string{"(0.1) a", "(0.2) b", "(0.3) c", "(0.4) d", "(0.5) Error (criu/sk-inet.c:1): boom", "(0.6) after"}
	if err := os.WriteFile(log, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	cause := errors.New("operation failed")
	e := NewError("dump", log, cause)
	if !errors.Is(e, cause) {
		t.Fatal("Error does not unwrap to its cause")
	}
	want := []string{"(0.2) b", "(0.3) c", "(0.4) d", lines[4]}
	if strings.Join(e.Lines, "|") != strings.Join(want, "|") {
		t.Fatalf("lines %q, want %q", e.Lines, want)
	}
	if !strings.Contains(e.Error(), "boom") || !strings.Contains(e.Error(), log) {
		t.Fatalf("message %q lacks the cause or the log path", e.Error())
	}
	if !strings.HasPrefix(e.Error(), "criu dump failed: boom (log ") {
		t.Fatalf("message %q does not begin with the first error CRIU logged", e.Error())
	}
}

// The headline is the first error CRIU logged that is not the rlimit
// failure it goes on from (which is what its RPC answer carries on a host
// without CAP_SYS_RESOURCE); without one, the RPC's failure.
func TestErrorHeadlineIsTheFirstRealCause(t *testing.T) {
	log := filepath.Join(t.TempDir(), "restore.log")
	lines := []string{
		"(00.000100) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted",
		"(00.056187)      1: Error (criu/files-reg.c:2175): File sbin/docker-init has bad size 752504 (expect 708080)",
		"(00.056188)      1: Error (criu/mem.c:1467): `- Can't open vma",
		"(00.057181) Error (criu/cr-restore.c:2331): Restoring FAILED.",
	}
	if err := os.WriteFile(log, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	rpc := errors.New("operation failed (msg:Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted err:0)")
	e := NewError("restore", log, rpc)
	if want := "criu restore failed: File sbin/docker-init has bad size 752504 (expect 708080) (log " + log + ")"; !strings.HasPrefix(e.Error(), want) {
		t.Fatalf("message %q, want it to begin %q", e.Error(), want)
	}
	if !errors.Is(e, rpc) {
		t.Fatal("Error does not unwrap to the RPC's failure")
	}
	noCause := filepath.Join(t.TempDir(), "dump.log")
	os.WriteFile(noCause, []byte(lines[0]+"\n(00.1) something else\n"), 0o644)
	if e := NewError("dump", noCause, rpc); !strings.HasPrefix(e.Error(), "criu dump: operation failed") {
		t.Fatalf("without a cause in the log: %q", e.Error())
	}
}

// TestLazyPageServerListensOnlyWhereAsked dumps a workload with real CRIU
// for post-copy and looks at the page server CRIU opens once the post-dump
// notification returned: it must listen on the loopback address asked for
// (CRIU's RPC ignores the address in a lazy dump and listened on every
// interface, where anyone reaching the host could read the memory). The
// test then resets it, as migrate-src does when a migration fails, and the
// process must run on.
func TestLazyPageServerListensOnlyWhereAsked(t *testing.T) {
	caps := requireCRIU(t)
	labtest.SkipUnless(t, caps.LazyPages, "userfaultfd for CRIU's lazy pages (criu check --feature uffd-noncoop)")
	bin := buildWorkload(t)
	addr := freeLoopbackAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, _ := startTree(t, bin, "--mem-mib", "8", "--verify-every", "0", "--listen", addr)
	if _, err := waitStatus(ctx, addr, 10); err != nil {
		t.Fatal(err)
	}

	pageServer := freeLoopbackAddr(t)
	_, port, _ := net.SplitHostPort(pageServer)
	seen := make(chan string, 1)
	go func() {
		// CRIU listens after the post-dump notification: find its
		// socket, then reset it so that CRIU resumes the process.
		for ctx.Err() == nil {
			if local := listeningOn(t, port); local != "" {
				seen <- local
				if c, err := net.DialTimeout("tcp", pageServer, time.Second); err == nil {
					c.(*net.TCPConn).SetLinger(0)
					c.Close()
				}
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		close(seen)
	}()
	_, err := Dump("", t.TempDir(), DumpSpec{Pid: cmd.Process.Pid, Process: true, LazyPages: true, PageServer: pageServer},
		DumpHooks{PostDump: func() error { return nil }})
	if err == nil {
		t.Fatal("a lazy dump whose page server was reset succeeded")
	}
	local := <-seen
	if local != "127.0.0.1:"+port {
		t.Fatalf("CRIU's page server listened on %q, want only 127.0.0.1:%s", local, port)
	}
	if _, err := waitStatus(ctx, addr, 0); err != nil {
		t.Fatalf("the process did not run on after the failed dump: %v", err)
	}
}

// listeningOn returns the local address of the IPv4 TCP socket listening
// on port in this network namespace ("" if none), from /proc/net/tcp.
func listeningOn(t *testing.T, port string) string {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Error(err)
		return ""
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "0A" { // TCP_LISTEN
			continue
		}
		host, p, ok := strings.Cut(f[1], ":")
		var ip, pn uint64
		if !ok || len(host) != 8 {
			continue
		}
		fmt.Sscanf(host, "%x", &ip)
		fmt.Sscanf(p, "%x", &pn)
		if fmt.Sprint(pn) != port {
			continue
		}
		// The address is in the kernel's byte order (little-endian here).
		return fmt.Sprintf("%d.%d.%d.%d:%d", ip&0xff, ip>>8&0xff, ip>>16&0xff, ip>>24, pn)
	}
	return ""
}

// TestDumpReadsLimitsOfAnotherUser dumps, with real CRIU, a process of
// another user whose open-files limits were lowered to odd values, and
// restores it: the restored process has the same limits. On a host whose
// root lacks CAP_SYS_RESOURCE (the lab's) stock CRIU fails this dump with
// "Can't get rlimit 0"; the CRIU scripts/deps.sh builds reads
// /proc/PID/limits instead.
func TestDumpReadsLimitsOfAnotherUser(t *testing.T) {
	requireCRIU(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	labtest.SkipUnless(t, ReadsLimitsFromProc(ctx, ""), "a CRIU that reads limits from /proc (criu check --feature rlimits_proc; run: make deps)")
	cmd := exec.Command("/bin/sh", "-c", "ulimit -S -n 777 && ulimit -H -n 888 && exec sleep 600")
	// Not in a PID namespace of its own: CRIU's parasite would mount a
	// /proc for it, which the other user may not (a container has one).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	limits := func(pid int) string {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "Max open files") {
				return strings.Join(strings.Fields(l), " ")
			}
		}
		return ""
	}
	const want = "Max open files 777 888 files"
	for limits(cmd.Process.Pid) != want {
		if ctx.Err() != nil {
			t.Fatalf("the process never had its limits: %q", limits(cmd.Process.Pid))
		}
		time.Sleep(10 * time.Millisecond)
	}

	dir := t.TempDir()
	if _, err := Dump("", dir, DumpSpec{Pid: cmd.Process.Pid, Process: true}, DumpHooks{PostDump: func() error { return nil }}); err != nil {
		t.Fatal(err)
	}
	<-exited
	pid, err := ProcessRestore{ImagesDir: dir, WorkDir: dir}.Restore("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killAndReap(pid) })
	if got := limits(pid); got != want {
		t.Fatalf("restored process: %q, want %q", got, want)
	}
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if !strings.Contains(string(st), "Uid:\t65534\t65534\t65534") {
		t.Fatalf("restored process is not the other user's:\n%s", st)
	}
}

// TestDumpSendsPagesToAPageServer dumps a workload with its pages sent,
// as it dumps, through a connected socket to a real `criu page-server`
// writing into another directory (the way a stop-and-copy streams memory
// to the destination); the images directory then holds no pages, the page
// server exits cleanly, and the restore from both verifies the memory.
func TestDumpSendsPagesToAPageServer(t *testing.T) {
	requireCRIU(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd, exited, addr, before := startWorkloadTree(t, ctx)

	images, pages := t.TempDir(), t.TempDir()
	mine, theirs, err := SocketPair()
	if err != nil {
		t.Fatal(err)
	}
	ps, err := StartPageServer("", pages, theirs)
	theirs.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ps.Stop)
	spec := DumpSpec{Pid: cmd.Process.Pid, Process: true, PagesTo: mine}
	if _, err := Dump("", images, spec, DumpHooks{PostDump: func() error { return nil }}); err != nil {
		t.Fatal(err)
	}
	mine.Close()
	if err := ps.Err(); err != nil {
		t.Fatalf("page server: %v", err)
	}
	select {
	case <-exited:
	case <-ctx.Done():
		t.Fatal("dumped process was not killed")
	}
	if local, _ := filepath.Glob(filepath.Join(images, "pages-*.img")); len(local) != 0 {
		t.Fatalf("the dump wrote pages locally too: %v", local)
	}
	files, err := PageFiles(pages)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(pages, f))
		if err != nil {
			t.Fatal(err)
		}
		size += fi.Size()
		if err := os.Rename(filepath.Join(pages, f), filepath.Join(images, f)); err != nil {
			t.Fatal(err)
		}
	}
	if size < 16<<20 {
		t.Fatalf("the page server received %d bytes in %v, want the workload's 16 MiB at least", size, files)
	}

	rst := imageOpts(t, images, "restore.log")
	rst.RstSibling = proto.Bool(true)
	var got restoredPID
	if err := gocriu.MakeCriu().Restore(rst, &got); err != nil {
		t.Fatal(NewError("restore", filepath.Join(images, "restore.log"), err))
	}
	t.Cleanup(func() { killAndReap(int(got.pid)) })
	after, err := waitStatus(ctx, addr, 0)
	if err != nil {
		t.Fatalf("restored process: %v", err)
	}
	verified, err := workload.Query(ctx, addr, workload.CmdVerify)
	if err != nil || verified.Bad != 0 || !after.Continues(before) {
		t.Fatalf("before %+v, after %+v, verify %+v, %v", before, after, verified, err)
	}
}

// The page server's directory may hold its log and CRIU's page images,
// nothing else.
func TestPageFilesTakesOnlyPageImages(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{PageServerLog, "pagemap-1.img", "pages-1.img", "pagemap-shmem-123456.img"} {
		os.WriteFile(filepath.Join(dir, name), nil, 0o600)
	}
	files, err := PageFiles(dir)
	if err != nil || len(files) != 3 {
		t.Fatalf("PageFiles: %v, %v", files, err)
	}
	for _, bad := range []string{"core-1.img", "pages-x.img", "pages-.img", "pagemap-1.img.tmp"} {
		d := t.TempDir()
		os.WriteFile(filepath.Join(d, "pages-1.img"), nil, 0o600)
		os.WriteFile(filepath.Join(d, bad), nil, 0o600)
		if _, err := PageFiles(d); err == nil {
			t.Errorf("PageFiles took a directory holding %s", bad)
		}
	}
	d := t.TempDir()
	os.Symlink("/etc/passwd", filepath.Join(d, "pages-1.img"))
	if _, err := PageFiles(d); err == nil {
		t.Error("PageFiles took a symlink")
	}
	if _, err := PageFiles(t.TempDir()); err == nil {
		t.Error("PageFiles took an empty directory")
	}
}
