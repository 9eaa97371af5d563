package migrate_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/transfer"
)

// TestHostilePeersAreRefusedAndLoseNothing runs, against one real
// migrate-dst on host2 (with --allow-source naming host1), what a hostile
// network and a compromised source can try: random bytes, a certificate
// from a foreign CA, a valid certificate of a host not on the allow-list, a
// silent connection, an allowed source that says nothing after its hello,
// a flood of half-open connections held open, and, inside an
// authenticated session, an image directory carrying a symlink or more
// than the source announced, and memory pages beyond the estimate. Each is
// refused (and logged, at most once per kind and address in the log
// limit's period); the container stays on host1 with its
// state, host2 holds nothing, and a normal migration succeeds right after,
// with the flood still held.
func TestHostilePeersAreRefusedAndLoseNothing(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 4*time.Minute)
	dst := startDst(t, e, "--allow-source", e.h1.Name, "--peer-wait-timeout", "8s") // (longer than the pause below and a dump)
	addr := net.JoinHostPort(e.h2.Addr, lab.AgentPort)

	// Random bytes where a TLS hello is due, again and again: each refused,
	// the log limited.
	const floods = 20
	for range floods {
		junk := make([]byte, 4096)
		rand.Read(junk)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(junk)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 512)
		for err == nil { // a TLS alert may come back first; then the end
			_, err = c.Read(buf)
		}
		c.Close()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal("migrate-dst kept a connection that sent random bytes")
		}
	}

	// A certificate from another CA.
	foreign := filepath.Join(t.TempDir(), "foreign")
	if err := transfer.WriteBundle(foreign, []transfer.BundleHost{{Name: "intruder"}}); err != nil {
		t.Fatal(err)
	}
	if err := dialAs(ctx, addr, transfer.HostTLSFiles(filepath.Join(foreign, "intruder"))); !errors.Is(err, transfer.ErrAuth) {
		t.Fatalf("foreign CA: got %v, want ErrAuth", err)
	}

	// A valid certificate of the fleet, of a host not on the allow-list.
	other := transfer.HostTLSFiles(filepath.Join(lab.TLSDir, "host3"))
	if err := dialAs(ctx, addr, other); !errors.Is(err, transfer.ErrRejected) || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("host3's certificate: got %v, want a rejection", err)
	}

	// An allowed source that authenticates and then says nothing: dropped
	// once the peer wait is over.
	silent, err := dialSession(ctx, addr, transfer.HostTLSFiles(filepath.Join(lab.TLSDir, e.h1.Name)))
	if err != nil {
		t.Fatalf("host1's certificate: %v", err)
	}
	select {
	case <-silent.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("migrate-dst kept an authenticated session that sent nothing for 30 s (peer wait 8 s)")
	}
	silent.Close()

	// A silent connection and a flood of half-open ones, held throughout.
	var held []net.Conn
	for range 40 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		held = append(held, c)
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()

	// A compromised source: its image directory carries a symlink. This
	// one stays inside the directory (a lexical check passes it), but CRIU
	// opens image files by name and follows links, and chains of such
	// links can lead anywhere: image directories accept none.
	name := unique("hostile")
	caddr := runWorkload(t, ctx, e, name, lab.WorkloadImage)
	before := waitBeat(t, ctx, caddr, 0)
	planted := 0
	onStage := func(stage string, kill func()) {
		if stage != "transfer" {
			return
		}
		dirs, _ := filepath.Glob(filepath.Join(e.h1.WorkDir(), "dump-*", "images"))
		for _, d := range dirs {
			if os.Symlink("inventory.img", filepath.Join(d, "zz-evil.img")) == nil {
				planted++
			}
		}
	}
	_, stderr, err := runSrc(ctx, e, name, onStage, "--pause-at", "transfer", "--pause-for", "2s")
	if planted == 0 {
		t.Fatalf("no image directory to plant the symlink in (err %v):\n%s", err, stderr)
	}
	failedMigration(t, ctx, e, name, caddr, before, err, stderr, "symlink zz-evil.img")
	assertHost2Clean(t, ctx, e, name, true)

	// A compromised source that sends more than it announced: a 2 GiB
	// file in its images, where its preflight estimated the container's
	// memory (tens of MiB). host2 takes no more than twice the estimate
	// plus a margin, which the disk check had accepted (a 2 GiB file alone
	// is within every fixed limit).
	planted = 0
	onStage = func(stage string, kill func()) {
		if stage != "transfer" {
			return
		}
		dirs, _ := filepath.Glob(filepath.Join(e.h1.WorkDir(), "dump-*", "images"))
		for _, d := range dirs {
			if f, err := os.Create(filepath.Join(d, "zz-big.img")); err == nil {
				if f.Truncate(2<<30) == nil { // sparse: nothing to write here
					planted++
				}
				f.Close()
			}
		}
	}
	_, stderr, err = runSrc(ctx, e, name, onStage, "--pause-at", "transfer", "--pause-for", "2s")
	if planted == 0 {
		t.Fatalf("no image directory to plant the file in (err %v):\n%s", err, stderr)
	}
	failedMigration(t, ctx, e, name, caddr, before, err, stderr, "directory stream over its limit")
	assertHost2Clean(t, ctx, e, name, true)

	// Memory that grows past what the preflight estimated, on its way
	// through host2's page server: once the estimate was sent, the
	// container's shell starts a second process holding 400 MiB, more than
	// twice the estimate plus the margin. host2 cuts the page stream off
	// there; the dump fails and the container goes on on host1.
	grow := unique("grow")
	gaddr := startContainer(t, ctx, e, grow, nil, lab.WorkloadImage, "sh", "-c",
		"/usr/local/bin/workload --data-dir /data --mem-mib 16 --dirty-pages-per-sec 100 --verify-every 1s & "+
			"while [ ! -e /tmp/grow ]; do sleep 0.1; done; "+
			"/usr/local/bin/workload --data-dir /tmp --mem-mib 400 --listen 127.0.0.1:7001 --verify-every 0 --dirty-pages-per-sec 0 & wait")
	gbefore := waitBeat(t, ctx, gaddr, 0)
	grown := false
	onStage = func(stage string, kill func()) {
		if stage != "dump" {
			return
		}
		if _, err := e.h1.Docker(ctx, "exec", grow, "touch", "/tmp/grow"); err != nil {
			t.Errorf("growing the container: %v", err)
			return
		}
		// (within the pause, which with the dump stays within host2's
		// peer wait)
		for deadline := time.Now().Add(2800 * time.Millisecond); time.Now().Before(deadline) && !grown; time.Sleep(100 * time.Millisecond) {
			grown = containerMemMiB(ctx, e.h1, grow) >= 400
		}
	}
	_, stderr, err = runSrc(ctx, e, grow, onStage, "--pause-at", "dump", "--pause-for", "3s")
	if !grown {
		t.Fatalf("the container never held the second process's memory (err %v):\n%s", err, stderr)
	}
	failedMigration(t, ctx, e, grow, gaddr, gbefore, err, stderr, "page stream carried more than")
	assertHost2Clean(t, ctx, e, grow, true)

	// The destination refused and logged each, and still serves.
	log := dst.Log()
	for _, want := range []string{"peer refused", "not allowed", "symlink zz-evil.img", "sent nothing within 8s", "may carry twice the source's estimate", "page stream carried more than"} {
		if !strings.Contains(log, want) {
			t.Errorf("migrate-dst's log lacks %q", want)
		}
	}
	// At most one line per kind of refusal and address within the limit's
	// period: random bytes fail in a few ways, plus the foreign CA and the
	// host not allowed.
	if n := strings.Count(log, "peer refused"); n > 8 {
		t.Errorf("%d refusals logged for %d attempts: the log is not limited\n%s", n, floods+2, log)
	}
	if _, stderr, err := runSrc(ctx, e, name, nil); err != nil {
		t.Fatalf("a normal migration after the attacks: %v\n%s", err, stderr)
	}
	if v := waitBeat(t, ctx, caddr, before.Counter); v.Bad != 0 {
		t.Fatalf("on host2: %+v", v)
	}
}

// dialAs opens a session to addr with the given credentials and closes it.
func dialAs(ctx context.Context, addr string, files transfer.TLSFiles) error {
	s, err := dialSession(ctx, addr, files)
	if err == nil {
		s.Close()
	}
	return err
}

// dialSession opens a session to addr with the given credentials.
func dialSession(ctx context.Context, addr string, files transfer.TLSFiles) (*transfer.Session, error) {
	cfg := transfer.DefaultConfig()
	tc, err := files.Client()
	if err != nil {
		return nil, err
	}
	cfg.TLS = tc
	cfg.Hello = transfer.Hello{Protocol: transfer.ProtocolVersion, Role: transfer.RoleSource, Agent: "hostile-test", DockerAPI: "1.41", CRIU: transfer.CRIUInfo{Version: 40201}}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return transfer.Dial(dctx, addr, cfg)
}

// containerMemMiB is the memory the container's cgroup on h uses, in MiB
// (0 when it cannot be read).
func containerMemMiB(ctx context.Context, h lab.Host, name string) int64 {
	pid, err := h.Docker(ctx, "inspect", "-f", "{{.State.Pid}}", name)
	if err != nil {
		return 0
	}
	v, err := readCgroupValue(strings.TrimSpace(pid), "memory", "memory.usage_in_bytes", "memory.current")
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(v, 10, 64)
	return n >> 20
}
