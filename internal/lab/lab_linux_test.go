package lab_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/lab/labtest"
	"github.com/dockmove/dockmove/internal/workload"
)

func uniqueName(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// runContainer starts a container on h and removes it when the test ends.
func runContainer(t *testing.T, ctx context.Context, h lab.Host, name string, args ...string) {
	t.Helper()
	argv := append([]string{"run", "-d", "--pull", "never", "--name", name}, args...)
	if _, err := h.Docker(ctx, argv...); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Docker(context.Background(), "rm", "-f", name) })
}

func TestContainerIsVisibleOnlyOnItsHost(t *testing.T) {
	h1, h2 := labtest.Require(t)
	ctx := testCtx(t)
	name := uniqueName(t, "only-h1")
	runContainer(t, ctx, h1, name, lab.BusyboxImage, "sleep", "300")
	filter := "name=^/" + name + "$"
	on1, err := h1.Docker(ctx, "ps", "-q", "--filter", filter)
	if err != nil || on1 == "" {
		t.Fatalf("host1 does not list its container: %q %v", on1, err)
	}
	on2, err := h2.Docker(ctx, "ps", "-aq", "--filter", filter)
	if err != nil || on2 != "" {
		t.Fatalf("host2 lists host1's container: %q %v", on2, err)
	}
}

func TestImageSavedOnHost1RunsOnHost2(t *testing.T) {
	h1, h2 := labtest.Require(t)
	ctx := testCtx(t)
	stamp := uniqueName(t, "stamp")
	image := "dockmove/lab-test:" + stamp
	src := uniqueName(t, "img-src")
	if _, err := h1.Docker(ctx, "run", "--pull", "never", "--name", src, lab.BusyboxImage, "sh", "-c", "echo "+stamp+" > /stamp"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h1.Docker(context.Background(), "rm", "-f", src) })
	if _, err := h1.Docker(ctx, "commit", src, image); err != nil {
		t.Fatal(err)
	}
	for _, h := range []lab.Host{h1, h2} {
		t.Cleanup(func() { h.Docker(context.Background(), "rmi", "-f", image) })
	}
	if _, err := h2.Docker(ctx, "image", "inspect", image); err == nil {
		t.Fatalf("host2 has %s before it was loaded", image)
	}
	copyImage(t, ctx, h1, h2, image)
	out, err := h2.Docker(ctx, "run", "--rm", "--pull", "never", image, "cat", "/stamp")
	if err != nil || out != stamp {
		t.Fatalf("image on host2 printed %q (%v), want %q", out, err, stamp)
	}
}

// copyImage pipes `docker save` on from into `docker load` on to.
func copyImage(t *testing.T, ctx context.Context, from, to lab.Host, image string) {
	t.Helper()
	save := exec.CommandContext(ctx, "docker", "-H", from.DockerHost, "save", image)
	load := exec.CommandContext(ctx, "docker", "-H", to.DockerHost, "load")
	pr, pw := io.Pipe()
	save.Stdout, load.Stdin = pw, pr
	if err := save.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { err := save.Wait(); pw.CloseWithError(err); done <- err }()
	if out, err := load.CombinedOutput(); err != nil {
		t.Fatalf("docker load on %s: %v: %s", to.Name, err, out)
	}
	if err := <-done; err != nil {
		t.Fatalf("docker save on %s: %v", from.Name, err)
	}
}

func TestRootNamespaceReachesContainersOnBothHosts(t *testing.T) {
	h1, h2 := labtest.Require(t)
	for _, h := range []lab.Host{h1, h2} {
		t.Run(h.Name, func(t *testing.T) {
			ctx := testCtx(t)
			name := uniqueName(t, "reach")
			runContainer(t, ctx, h, name, "--network", h.Network, lab.WorkloadImage,
				"/usr/local/bin/workload", "--mem-mib", "4")
			ip, err := h.Docker(ctx, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+h.Network+"\").IPAddress}}", name)
			if err != nil {
				t.Fatal(err)
			}
			addr, err := netip.ParseAddr(ip)
			if err != nil || !netip.MustParsePrefix(h.IPRange).Contains(addr) {
				t.Fatalf("container address %q is not in %s's range %s", ip, h.Name, h.IPRange)
			}
			b := queryUntilUp(t, ctx, net.JoinHostPort(ip, fmt.Sprint(lab.WorkloadPort)))
			if b.Pages != 4<<20/workload.PageSize || b.Bad != 0 {
				t.Fatalf("workload status %+v", b)
			}
		})
	}
}

// queryUntilUp polls the workload's status until it answers (the container
// may still be starting) or ctx ends.
func queryUntilUp(t *testing.T, ctx context.Context, addr string) workload.Beat {
	t.Helper()
	for {
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		b, err := workload.Query(qctx, addr, workload.CmdStatus)
		cancel()
		if err == nil {
			return b
		}
		select {
		case <-ctx.Done():
			t.Fatalf("workload at %s never answered: %v", addr, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestHost1ReachesHost2OverEth0(t *testing.T) {
	h1, h2 := labtest.Require(t)
	ctx := testCtx(t)
	ln, err := h2.Listen("tcp", net.JoinHostPort(h2.Addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			peer <- err.Error()
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Fprintf(c, "echo %s", line)
		peer <- c.RemoteAddr().(*net.TCPAddr).IP.String()
	}()
	c, err := h1.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("host1 cannot reach host2 at %s: %v", ln.Addr(), err)
	}
	defer c.Close()
	fmt.Fprintln(c, "hello")
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || reply != "echo hello\n" {
		t.Fatalf("reply %q, %v", reply, err)
	}
	if got := <-peer; got != h1.Addr {
		t.Fatalf("host2 saw the connection from %s, want host1's eth0 %s", got, h1.Addr)
	}
}

// TestSetupIsIdempotent runs `make deps`, `make lab-up` and `make lab-up-modern` again on a machine
// where both already ran, and checks that nothing was rebuilt or restarted.
func TestSetupIsIdempotent(t *testing.T) {
	hosts := labtest.RequireHosts(t, "host1", "host2", "host3", "host4")
	ctx := testCtx(t)
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	before := setupState(t, ctx, hosts...)
	for _, target := range []string{"deps", "lab-up", "lab-up-modern"} {
		out, err := exec.CommandContext(ctx, "make", "-s", "-C", root, target).CombinedOutput()
		if err != nil {
			t.Fatalf("make %s: %v\n%s", target, err, out)
		}
		for _, word := range []string{"installing", "building", "created", "up (pid", "built", "loaded", "network "} {
			if strings.Contains(string(out), word) {
				t.Errorf("second make %s changed something (%q):\n%s", target, word, out)
			}
		}
	}
	if after := setupState(t, ctx, hosts...); after != before {
		t.Fatalf("state changed:\nbefore %s\nafter  %s", before, after)
	}
}

// setupState summarises what a repeated setup must not change: the CRIU
// binary, each dockerd's PID, each netns inode, each lab network's ID and
// each test image's ID.
func setupState(t *testing.T, ctx context.Context, hosts ...lab.Host) string {
	t.Helper()
	var b strings.Builder
	st, err := os.Stat("/usr/local/sbin/criu")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "criu=%s ", st.ModTime())
	if st, err := os.Stat("/var/lib/dockmove-root/testing/.dockmove-ready"); err == nil {
		fmt.Fprintf(&b, "modern-root=%s ", st.ModTime())
	}
	for _, h := range hosts {
		pid, err := os.ReadFile(h.PIDFile)
		if err != nil {
			t.Fatal(err)
		}
		ns, err := os.Stat(h.Netns)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: pid=%s netns=%d ", h.Name, strings.TrimSpace(string(pid)), ns.Sys().(*syscall.Stat_t).Ino)
		for _, q := range [][]string{
			{"network", "inspect", "-f", "{{.Id}}", h.Network},
			{"network", "inspect", "-f", "{{.Id}}", h.Network2},
			{"image", "inspect", "-f", "{{.Id}}", lab.BusyboxImage},
			{"image", "inspect", "-f", "{{.Id}}", lab.WorkloadImage},
		} {
			id, err := h.Docker(ctx, q...)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s ", id)
		}
	}
	return b.String()
}

// TestLabUpRepeated brings the lab up many times over: every run must
// succeed and change nothing. A check that fails at random (a racy
// pipeline) shows here as a run that adds an address twice.
func TestLabUpRepeated(t *testing.T) {
	hosts := labtest.RequireHosts(t, "host1", "host2", "host3", "host4")
	ctx := testCtx(t)
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	before := setupState(t, ctx, hosts...)
	for i := range 10 {
		out, err := exec.CommandContext(ctx, "bash", root+"/scripts/lab.sh", "up", "all").CombinedOutput()
		if err != nil || len(out) != 0 {
			t.Fatalf("lab.sh up, run %d: %v\n%s", i+1, err, out)
		}
	}
	if after := setupState(t, ctx, hosts...); after != before {
		t.Fatalf("state changed:\nbefore %s\nafter  %s", before, after)
	}
}
