//go:build linux

package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
)

// PodmanArchive is the way Podman users move a container between hosts
// today: `podman container checkpoint --export` on the source, the archive
// copied to the destination, `podman container restore --import` there.
// The bench runs Debian's podman on this machine with one storage per
// host and copies the archive over the lab's link between the two hosts'
// namespaces (shaped like the migrations' when --link is given).
//
// Its containers run without a network (--network none): Podman's own
// network set-up at the restore is left out, which can only shorten its
// freeze, so the ratio against it stays conservative; no client can watch
// them, so only the freeze the commands take is reported (checkpoint
// start to restore returned, the copy included). Memory is verified
// afterwards from inside the restored container's namespace.
const PodmanArchive = "podman-archive"

// podmanRoot holds the per-host storages and the archives.
const podmanRoot = "/var/lib/dockmove-podman"

// podman runs Debian's podman as host h's: its own storage, runc as the
// runtime (this machine mounts cgroup v1 and v2 side by side, which
// Debian's crun refuses: "cgroups in hybrid mode not supported").
func podman(ctx context.Context, h lab.Host, args ...string) (string, error) {
	cmd := podmanCommand(ctx, h, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("podman %s on %s: %v: %s", args[0], h.Name, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// podmanCommand prepares podman with host h's storage.
func podmanCommand(ctx context.Context, h lab.Host, args ...string) *exec.Cmd {
	base := []string{"--root", filepath.Join(podmanRoot, h.Name, "root"), "--runroot", filepath.Join("/run/dockmove-podman", h.Name), "--runtime", "runc"}
	return exec.CommandContext(ctx, "podman", append(base, args...)...)
}

// errNoPodman: the Podman peer was asked for and podman is not installed.
var errNoPodman = errors.New("bench: the podman-archive strategy needs podman (apt-get install podman; make bench installs it)")

// podmanSetup loads the workload image from host1's Docker into each
// host's Podman storage.
func (r *runner) podmanSetup(ctx context.Context) error {
	if _, err := exec.LookPath("podman"); err != nil {
		return errNoPodman
	}
	want, err := r.h1.Docker(ctx, "image", "inspect", "-f", "{{.Id}}", lab.WorkloadImage)
	if err != nil {
		return err
	}
	for _, h := range []lab.Host{r.h1, r.h2} {
		// The same image as Docker's: a lab image built again since the
		// last run replaces the one loaded then.
		if have, err := podman(ctx, h, "image", "inspect", "-f", "{{.Id}}", podmanImage); err == nil && "sha256:"+have == want {
			continue
		}
		save := exec.CommandContext(ctx, "docker", "-H", r.h1.DockerHost, "save", lab.WorkloadImage)
		out, err := save.StdoutPipe()
		if err != nil {
			return err
		}
		if err := save.Start(); err != nil {
			return err
		}
		load := podmanCommand(ctx, h, "load", "-q")
		load.Stdin = out
		msg, lerr := load.CombinedOutput()
		if serr := save.Wait(); lerr == nil && serr != nil {
			lerr = serr
		}
		if lerr != nil {
			return fmt.Errorf("bench: load %s into %s's podman: %v: %s", lab.WorkloadImage, h.Name, lerr, msg)
		}
	}
	return nil
}

// podmanImage is the workload image's name in Podman's storage.
const podmanImage = "localhost/" + lab.WorkloadImage

// podmanArchive measures one Podman migration of the workload.
func (r *runner) podmanArchive(ctx context.Context, name string, mib, dirty int, res *Result) {
	defer func() {
		for _, h := range []lab.Host{r.h1, r.h2} {
			podman(context.Background(), h, "rm", "-f", name)
			os.Remove(podmanArchivePath(h, name))
		}
	}()
	// Without CAP_SYS_RESOURCE root cannot raise its limits, and Podman
	// would set them above this machine's.
	if _, err := podman(ctx, r.h1, "run", "-d", "--name", name, "--network", "none",
		"--ulimit", "nofile=20000:20000", "--ulimit", "nproc=4096:4096", podmanImage,
		"/usr/local/bin/workload", "--mem-mib", strconv.Itoa(mib), "--dirty-pages-per-sec", strconv.Itoa(dirty), "--verify-every", "0"); err != nil {
		res.Error = err.Error()
		return
	}
	var before string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		out, err := podman(ctx, r.h1, "exec", name, "/usr/local/bin/workload", "query", "127.0.0.1:7000", "status")
		if err == nil {
			before = runOf(out)
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			res.Error = "the workload never answered in podman: " + err.Error()
			return
		}
	}
	src, dst := podmanArchivePath(r.h1, name), podmanArchivePath(r.h2, name)
	for _, p := range []string{src, dst} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			res.Error = err.Error()
			return
		}
	}
	start := time.Now()
	if _, err := podman(ctx, r.h1, "container", "checkpoint", "--export", src, name); err != nil {
		res.Error = err.Error()
		return
	}
	n, err := copyOverLink(ctx, r.h1, r.h2, src, dst)
	if err != nil {
		res.Error = err.Error()
		return
	}
	if _, err := podman(ctx, r.h2, "container", "restore", "--import", dst); err != nil {
		res.Error = err.Error()
		return
	}
	res.FreezeAgentMs = ms(time.Since(start))
	res.TotalMs, res.BytesWire = res.FreezeAgentMs, n
	res.Check = r.podmanVerify(ctx, name, before)
}

func podmanArchivePath(h lab.Host, name string) string {
	return filepath.Join(podmanRoot, h.Name, "archives", name+".tar")
}

// podmanVerify has the restored workload check every page, and that it is
// the same run as before the move. A restored network namespace without a
// network has its loopback down: it is brought up first.
func (r *runner) podmanVerify(ctx context.Context, name, before string) string {
	pid, err := podman(ctx, r.h2, "inspect", "-f", "{{.State.Pid}}", name)
	if err != nil {
		return err.Error()
	}
	if out, err := exec.CommandContext(ctx, "nsenter", "-t", pid, "-n", "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fmt.Sprintf("loopback up in the restored container: %v: %s", err, out)
	}
	out, err := podman(ctx, r.h2, "exec", name, "/usr/local/bin/workload", "query", "127.0.0.1:7000", "verify")
	switch {
	case err != nil:
		return "verify: " + err.Error()
	case !strings.Contains(out, " bad=0 "):
		return "verify: " + out
	case runOf(out) != before:
		return fmt.Sprintf("the restored workload is run %s, not %s", runOf(out), before)
	}
	return "ok"
}

// runOf picks the run ID from the workload's status line.
func runOf(status string) string {
	for _, f := range strings.Fields(status) {
		if v, ok := strings.CutPrefix(f, "run="); ok {
			return v
		}
	}
	return ""
}

// copyOverLink copies file src to dst through a TCP connection from h1's
// namespace to h2's over the lab link, and returns the bytes sent.
func copyOverLink(ctx context.Context, h1, h2 lab.Host, src, dst string) (int64, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	ln, err := h2.Listen("tcp4", net.JoinHostPort(h2.Addr, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	type result struct {
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		n, err := io.Copy(out, c)
		if err == nil {
			err = out.Sync()
		}
		got <- result{n, err}
	}()
	c, err := h1.Dial(ctx, "tcp4", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	sent, err := io.Copy(c, in)
	c.Close()
	if err != nil {
		return sent, fmt.Errorf("bench: copy the archive to %s: %w", h2.Name, err)
	}
	select {
	case r := <-got:
		if r.err == nil && r.n != sent {
			r.err = fmt.Errorf("bench: %s received %d of %d bytes", h2.Name, r.n, sent)
		}
		return r.n, r.err
	case <-ctx.Done():
		return sent, ctx.Err()
	}
}
