package migrate_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/workload"
	"github.com/dockmove/dockmove/migrate"
)

// TestMigrateWorkload moves the workload container with a named volume and
// checks everything a user relies on: memory, counter, files, volume, TCP
// connection, address, and Docker's management on host2; with each strategy.
// Lazy runs it from an image host2 lacks, which travels with it.
// Stop-and-copy sends the memory to host2's page server as CRIU dumps it,
// or, with --local-pages, ships the dump afterwards.
func TestMigrateWorkload(t *testing.T) {
	t.Run("stop-and-copy", func(t *testing.T) { migrateWorkload(t, setup(t), "stop-and-copy") })
	t.Run("stop-and-copy-local-pages", func(t *testing.T) { moveWorkload(t, setup(t), "stop-and-copy", false, "--local-pages") })
	t.Run("lazy-image-missing", func(t *testing.T) { migrateWorkloadImageMissing(t, setup(t), "lazy") })
}

// migrateWorkload moves a workload with a named volume and a file in its
// writable layer from e.h1 to e.h2 and checks what a user would: the
// client's TCP stream unbroken, memory verified, same address, files and
// volume present, Docker on e.h2 managing the copy, nothing left on e.h1.
func migrateWorkload(t *testing.T, e env, strategy string) {
	moveWorkload(t, e, strategy, false)
}

// migrateWorkloadImageMissing is migrateWorkload from an image only e.h1
// has (the workload's image and a layer of its own): the image travels
// with the container, without the layers e.h2 has, and keeps its name.
func migrateWorkloadImageMissing(t *testing.T, e env, strategy string) {
	moveWorkload(t, e, strategy, true)
}

func moveWorkload(t *testing.T, e env, strategy string, imageMissing bool, extra ...string) {
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	image := lab.WorkloadImage
	if imageMissing {
		image = "dockmove/only-host1:" + unique("t")
		commitImage(t, ctx, e, image, "layer")
		if _, err := e.h2.Docker(ctx, "image", "inspect", image); err == nil {
			t.Fatal("host2 already has the image")
		}
	}
	name, vol := unique("wl"), unique("vol")
	t.Cleanup(func() {
		for _, h := range []lab.Host{e.h1, e.h2} {
			cleanupDocker(h, "rm", "-f", name)
			cleanupDocker(h, "volume", "rm", "-f", vol)
		}
	})
	addr := runWorkload(t, ctx, e, name, image, "-v", vol+":/vol", "--restart", "unless-stopped")
	if _, err := e.h1.Docker(ctx, "exec", name, "sh", "-c", "echo written-before > /data/note && echo in-volume > /vol/kept"); err != nil {
		t.Fatal(err)
	}
	before := identity(t, ctx, e.h1, name)
	watch := watchBeats(t, ctx, addr, 50)
	atStart := waitBeat(t, ctx, addr, 0)

	report, stderr, err := runSrc(ctx, e, name, nil, append([]string{"--strategy", strategy}, extra...)...)
	if err != nil {
		t.Fatalf("migration failed: %v\n%s", err, stderr)
	}
	t.Logf("%s: freeze %v, total %v, %d bytes (%d on the wire), %d bytes of pages", report.Strategy, report.FreezeTime, report.TotalTime, report.BytesRaw, report.BytesWire, report.PageBytes)
	if string(report.Strategy) != strategy || report.FreezeTime <= 0 || report.BytesRaw+report.PageBytes < 64<<20 || report.ContainerID == "" {
		t.Fatalf("implausible report: %+v", report)
	}
	if strategy == "stop-and-copy" {
		// The memory went through the page server's stream, or (local
		// pages) in the images.
		images := report.Streams["images"].Bytes
		if local := slices.Contains(extra, "--local-pages"); local && (report.PageBytes != 0 || images < 64<<20) ||
			!local && (report.PageBytes < 64<<20 || images > 16<<20) {
			t.Fatalf("stop-and-copy %v sent %d bytes of pages to the page server and %d in the images", extra, report.PageBytes, images)
		}
	}
	assertFreezeAccounted(t, report)
	assertHostsReported(t, ctx, e, report)
	if imageMissing {
		checkImageShipped(t, ctx, e, name, image, report)
	}

	// The client kept its connection: more beats arrive, in sequence.
	if err := watch.WaitBeats(ctx, watch.Stats().Beats+100); err != nil {
		t.Fatalf("heartbeat stream after migration: %v", err)
	}
	s := watch.Stop()
	if s.SeqBreaks != 0 || s.Resets != 0 || s.Err != nil {
		t.Fatalf("heartbeat stream broke: %+v", s)
	}
	t.Logf("longest heartbeat gap seen by the client: %v", s.MaxGap)

	verified, err := workload.Query(ctx, addr, workload.CmdVerify)
	if err != nil {
		t.Fatal(err)
	}
	if verified.Bad != 0 || !verified.Continues(atStart) || verified.Rounds == 0 {
		t.Fatalf("after migration %+v, before %+v", verified, atStart)
	}
	if after := identity(t, ctx, e.h2, name); after != before {
		t.Fatalf("address changed: %q on host1, %q on host2", before, after)
	}
	for cmd, want := range map[string]string{"cat /data/note": "written-before", "cat /vol/kept": "in-volume"} {
		out, err := e.h2.Docker(ctx, "exec", name, "sh", "-c", cmd)
		if err != nil || out != want {
			t.Fatalf("docker exec %s on host2: %q, %v", cmd, out, err)
		}
	}
	logs, err := e.h2.Docker(ctx, "logs", name)
	if err != nil || !strings.Contains(logs, "msg=verify") {
		t.Fatalf("docker logs on host2: %q, %v", logs, err)
	}
	if out, _ := e.h1.Docker(ctx, "ps", "-aq", "--filter", "name=^/"+name+"$"); out != "" {
		t.Fatalf("host1 still has the container: %s", out)
	}
	if policy, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", name); policy != "unless-stopped" {
		t.Fatalf("restart policy on host2: %q", policy)
	}
	if _, err := e.h2.Docker(ctx, "stop", "-t", "5", name); err != nil {
		t.Fatal(err)
	}
	state, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name)
	if state != "exited" {
		t.Fatalf("after docker stop the container is %q", state)
	}
	// Started again, it runs its image afresh (never the consumed images):
	// the counter starts over, the writable layer and volume are kept.
	if _, err := e.h2.Docker(ctx, "start", name); err != nil {
		t.Fatalf("docker start on host2 after stop: %v", err)
	}
	if fresh := waitBeat(t, ctx, addr, 0); fresh.Counter >= verified.Counter {
		t.Fatalf("after docker start the counter is %d, was %d: not a fresh start", fresh.Counter, verified.Counter)
	}
	if out, err := e.h2.Docker(ctx, "exec", name, "cat", "/data/note", "/vol/kept"); err != nil || out != "written-before\nin-volume" {
		t.Fatalf("after docker start on host2: %q, %v", out, err)
	}
	assertHost2Clean(t, ctx, e, name, false)
}

// checkImageShipped checks that image, which only e.h1 had, travelled
// with container name: sent, without the layers e.h2 has (except into the
// containerd image store, whose `docker load` wants every layer in the
// archive), and the container on e.h2 runs it under its name.
func checkImageShipped(t *testing.T, ctx context.Context, e env, name, image string, report *migrate.Report) {
	t.Helper()
	if !report.ImageSent {
		t.Fatal("report says the image was not sent")
	}
	driver, _ := e.h2.Docker(ctx, "info", "--format", "{{.Driver}}")
	if skipped := report.ImageBytesSkipped > 0; skipped != (driver != "overlayfs") {
		t.Fatalf("image sent to a %s store skipped %d bytes of layers host2 has: %+v", driver, report.ImageBytesSkipped, report)
	}
	out, err := e.h2.Docker(ctx, "exec", name, "cat", "/layer")
	if err != nil || out != "layer" {
		t.Fatalf("image layer on host2: %q %v", out, err)
	}
	if ref, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.Config.Image}}", name); ref != image {
		t.Fatalf("host2's container refers to image %q, want %q", ref, image)
	}
}

// commitImage makes image on e.h1: the workload image plus a layer holding
// /layer with text; it is removed from both hosts after the test.
func commitImage(t *testing.T, ctx context.Context, e env, image, text string) {
	t.Helper()
	base := unique("base")
	if _, err := e.h1.Docker(ctx, "run", "--pull", "never", "--name", base, lab.WorkloadImage, "sh", "-c", "echo "+text+" > /layer"); err != nil {
		t.Fatal(err)
	}
	defer cleanupDocker(e.h1, "rm", "-f", base)
	if _, err := e.h1.Docker(ctx, "commit", base, image); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, h := range []lab.Host{e.h1, e.h2} {
			cleanupDocker(h, "rmi", "-f", image)
		}
	})
}

// failedMigration checks the promise of every failure: the container runs
// on host1 with its state (counter continues, memory verifies), and host2
// holds nothing of it.
func failedMigration(t *testing.T, ctx context.Context, e env, name, addr string, before workload.Beat, err error, stderr, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("migration succeeded, want failure (%s)", want)
	}
	if !strings.Contains(stderr, want) {
		t.Fatalf("migrate-src did not say %q:\n%s", want, stderr)
	}
	status, _ := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Status}} {{.HostConfig.RestartPolicy.Name}}", name)
	if !strings.HasPrefix(status, "running") {
		t.Fatalf("container on host1 is %q after the failed migration", status)
	}
	after, qerr := workload.Query(ctx, addr, workload.CmdVerify)
	if qerr != nil || !after.Continues(before) || after.Bad != 0 {
		t.Fatalf("host1's container lost its state: before %+v, after %+v, %v", before, after, qerr)
	}
}

// assertHost2Clean checks host2 holds no leftover of a migration of name:
// no container (unless committed), no runtime state, no staging, no state
// files.
func assertHost2Clean(t *testing.T, ctx context.Context, e env, name string, noContainer bool) {
	t.Helper()
	if noContainer {
		if out, _ := e.h2.Docker(ctx, "ps", "-aq", "--filter", "name=^/"+name+"$"); out != "" {
			t.Fatalf("host2 holds a container named %s", name)
		}
	}
	dataRoot, err := e.h2.Docker(ctx, "info", "--format", "{{.DockerRootDir}}")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{
		e.h2.RuntimeState(),
		filepath.Join(e.h2.WorkDir(), "migrations"),
		filepath.Join(e.h2.WorkDir(), "staging"),
		filepath.Join(dataRoot, "dockmove-staging"), // the containerd image store's writable layers
	} {
		ents, _ := os.ReadDir(dir)
		var left []string
		for _, en := range ents {
			if en.Name() != "runtime.log" {
				left = append(left, en.Name())
			}
		}
		if len(left) > 0 {
			t.Fatalf("host2 holds leftovers in %s: %v", dir, left)
		}
	}
}

func TestFailureNameTakenOnHost2(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	name := unique("taken")
	addr := runWorkload(t, ctx, e, name, lab.WorkloadImage, "--restart", "unless-stopped")
	if _, err := e.h2.Docker(ctx, "run", "-d", "--pull", "never", "--name", name, lab.BusyboxImage, "sleep", "300"); err != nil {
		t.Fatal(err)
	}
	before := waitBeat(t, ctx, addr, 0)
	_, stderr, err := runSrc(ctx, e, name, nil)
	failedMigration(t, ctx, e, name, addr, before, err, stderr, "already exists on the destination")
	if img, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.Config.Image}} {{.State.Status}}", name); img != lab.BusyboxImage+" running" {
		t.Fatalf("host2's own container was touched: %q", img)
	}
	if policy, _ := e.h1.Docker(ctx, "inspect", "-f", "{{.HostConfig.RestartPolicy.Name}}", name); policy != "unless-stopped" {
		t.Fatalf("restart policy on host1 is %q after the failure", policy)
	}
	assertHost2Clean(t, ctx, e, name, false)
}

func TestFailureRestoreFailsOnHost2(t *testing.T) {
	failureRestoreFailsOnHost2(t, setup(t), "stop-and-copy")
}

// failureRestoreFailsOnHost2: host2's restore fails; the container runs
// on host1 again and migrate-src names host2's failure as the cause (in
// post-copy too, where host1's CRIU sees only its page client go).
func failureRestoreFailsOnHost2(t *testing.T, e env, strategy string) {
	ctx := ctxFor(t, 3*time.Minute)
	// An action script that fails makes CRIU's real restore fail on host2,
	// once CRIU logs to its restore log.
	startDst(t, e, "--restore-criu-option", "action-script /bin/false")
	name := unique("rstfail")
	addr := runWorkload(t, ctx, e, name, lab.WorkloadImage)
	before := waitBeat(t, ctx, addr, 0)
	_, stderr, err := runSrc(ctx, e, name, nil, "--strategy", strategy)
	failedMigration(t, ctx, e, name, addr, before, err, stderr, "restore on destination: transfer: peer failed: criu restore")
	t.Logf("migrate-src reported:\n%s", stderr)
	assertNamedLogKept(t, stderr, "Script /bin/false exited")
	assertHost2Clean(t, ctx, e, name, true)
}

func TestFailureDestinationKilledDuringTransfer(t *testing.T) {
	failureDestinationKilledDuringTransfer(t, setup(t))
}

func failureDestinationKilledDuringTransfer(t *testing.T, e env) {
	ctx := ctxFor(t, 3*time.Minute)
	d := startDst(t, e)
	name := unique("killed")
	addr := runWorkload(t, ctx, e, name, lab.WorkloadImage)
	before := waitBeat(t, ctx, addr, 0)
	killed := make(chan struct{})
	_, stderr, err := runSrc(ctx, e, name, func(stage string, _ func()) {
		if stage == "transfer" {
			d.Kill()
			close(killed)
		}
	})
	select {
	case <-killed:
	default:
		t.Fatalf("migrate-src never reached the transfer stage:\n%s", stderr)
	}
	failedMigration(t, ctx, e, name, addr, before, err, stderr, "was not migrated")
	// A supervisor restarts the agent; it removes what the killed run made.
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	assertHost2Clean(t, ctx, e, name, true)
	if vols, _ := e.h2.Docker(ctx, "ps", "-aq", "--filter", "label="+migrate.LabelMigration); vols != "" {
		for _, id := range strings.Fields(vols) {
			st, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.Name}} {{.State.Status}}", id)
			if strings.Contains(st, name) {
				t.Fatalf("host2 still holds %s", st)
			}
		}
	}
}

// TestFailureSourceKilledDuringTransfer kills migrate-src while the frozen
// container's images are on the wire: CRIU, losing its client, resumes the
// container, and migrate-dst removes its half-made copy.
func TestFailureSourceKilledDuringTransfer(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	name := unique("srckilled")
	addr := runWorkload(t, ctx, e, name, lab.WorkloadImage, "--restart", "always")
	before := waitBeat(t, ctx, addr, 0)
	onStage, killed := atStage("transfer", func(kill func()) {
		kill()
	})
	run := lab.RunSource(ctx, e.h1, e.h2, e.bin, name, onStage, "--strategy", "stop-and-copy")
	if !killed() {
		t.Fatalf("migrate-src never reached the transfer stage:\n%s", run.Stderr)
	}
	if run.Err == nil {
		t.Fatal("killed migrate-src exited successfully")
	}
	// CRIU notices its client is gone and resumes the tree.
	after := waitBeat(t, ctx, addr, before.Counter)
	if v, err := workload.Query(ctx, addr, workload.CmdVerify); err != nil || v.Bad != 0 || !after.Continues(before) {
		t.Fatalf("host1's container after the kill: %+v, %v", v, err)
	}
	if policy, _ := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Status}} {{.HostConfig.RestartPolicy.Name}}", name); policy != "running always" {
		t.Fatalf("host1's container is %q, want running with its restart policy", policy)
	}
	// migrate-dst saw the session end and cleaned up without a restart.
	waitGoneFromHost2(t, ctx, e, name, 20*time.Second)
	assertHost2Clean(t, ctx, e, name, true)
	// The killed run's guard removed its dump from host1.
	if r := waitGuardResult(t, ctx, e, run.Events); r.Outcome != migrate.GuardRolledBack || len(r.Errors) != 0 {
		t.Fatalf("guard: %+v", r)
	}
	if left, _ := filepath.Glob(filepath.Join(e.h1.WorkDir(), "dump-*")); len(left) != 0 {
		t.Fatalf("host1 still holds %v after the guard", left)
	}
	if _, stderr, err := runSrc(ctx, e, name, nil); err != nil {
		t.Fatalf("migration after the kill: %v\n%s", err, stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(e.h1.WorkDir(), "dump-*")); len(left) != 0 {
		t.Fatalf("host1 still holds %v", left)
	}
}

// TestMigrateTTYContainer moves an interactive container (docker run -dit):
// CRIU keeps the orphaned pty master, runc gets containerd's console socket.
func TestMigrateTTYContainer(t *testing.T) { migrateTTYContainer(t, setup(t)) }

func migrateTTYContainer(t *testing.T, e env) {
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	name := unique("tty")
	t.Cleanup(func() {
		for _, h := range []lab.Host{e.h1, e.h2} {
			cleanupDocker(h, "rm", "-f", name)
		}
	})
	// The count is written aside and renamed into place: a reader never
	// sees the file truncated and not yet written (echo's open and write
	// are two steps, and a process just restored may fault between them).
	loop := "i=0; while true; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.05; done"
	if _, err := e.h1.Docker(ctx, "run", "-dit", "--pull", "never", "--name", name, "--network", e.h1.Network, lab.BusyboxImage, "sh", "-c", loop); err != nil {
		t.Fatal(err)
	}
	read := func(h lab.Host) (int, error) {
		out, err := h.Docker(ctx, "exec", name, "cat", "/tmp/count")
		if err != nil {
			return 0, err
		}
		var n int
		if _, err := fmt.Sscan(out, &n); err != nil {
			return 0, fmt.Errorf("counter on %s reads %q: %v", h.Name, out, err)
		}
		return n, nil
	}
	count := func(h lab.Host) int {
		n, err := read(h)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	// The shell may not have written its first count yet.
	for n, err := read(e.h1); n < 20; n, err = read(e.h1) {
		if err != nil && ctx.Err() != nil {
			t.Fatalf("the counter never reached 20 on host1: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := count(e.h1)
	if _, stderr, err := runSrc(ctx, e, name, nil); err != nil {
		t.Fatalf("migration failed: %v\n%s", err, stderr)
	}
	first := count(e.h2)
	time.Sleep(300 * time.Millisecond)
	if later := count(e.h2); first < before || later <= first {
		t.Fatalf("counter %d on host1, then %d and %d on host2: the shell did not continue", before, first, later)
	}
	if tty, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.Config.Tty}} {{.State.Status}}", name); tty != "true running" {
		t.Fatalf("on host2: %q", tty)
	}
}

// TestNewAddressOnlyWhenAccepted moves a container between networks of the
// same name but different subnets: refused before freezing by default,
// done with a new address (and closed connections) when the user accepts.
func TestNewAddressOnlyWhenAccepted(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	netName := unique("alt")
	// A host-local bridge network: same name, a different subnet on each host.
	for i, h := range []lab.Host{e.h1, e.h2} {
		subnet := fmt.Sprintf("10.%d.0.0/24", 88+i) // off the lab's 10.77 and 10.78
		if _, err := h.Docker(ctx, "network", "create", "-d", "bridge", "--subnet", subnet, netName); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cleanupDocker(h, "network", "rm", netName) })
	}
	name := unique("newaddr")
	t.Cleanup(func() {
		for _, h := range []lab.Host{e.h1, e.h2} {
			cleanupDocker(h, "rm", "-f", name)
		}
	})
	if _, err := e.h1.Docker(ctx, "run", "-d", "--pull", "never", "--name", name, "--network", netName, lab.WorkloadImage,
		"/usr/local/bin/workload", "--mem-mib", "16", "--verify-every", "0"); err != nil {
		t.Fatal(err)
	}
	query := func(h lab.Host, cmd string) workload.Beat {
		t.Helper()
		for ctx.Err() == nil {
			out, err := h.Docker(ctx, "exec", name, "workload", "query", "127.0.0.1:7000", cmd)
			if err == nil {
				b, err := workload.ParseBeat(out)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatal(ctx.Err())
		return workload.Beat{}
	}
	before := query(e.h1, "status")

	_, stderr, err := runSrc(ctx, e, name, nil)
	if err == nil || !strings.Contains(stderr, "--allow-new-address") {
		t.Fatalf("migration to another subnet was not refused with advice: %v\n%s", err, stderr)
	}
	if st, _ := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Status}}", name); st != "running" {
		t.Fatalf("after the refusal the container is %q on host1", st)
	}

	report, stderr, err := runSrc(ctx, e, name, nil, "--allow-new-address")
	if err != nil {
		t.Fatalf("migration with --allow-new-address: %v\n%s", err, stderr)
	}
	if !strings.HasPrefix(report.NewAddress, "10.89.0.") {
		t.Fatalf("new address %q is not on host2's subnet", report.NewAddress)
	}
	after := query(e.h2, "verify")
	if !after.Continues(before) || after.Bad != 0 {
		t.Fatalf("before %+v after %+v", before, after)
	}
}

// TestKeepSource leaves the stopped original on host1.
func TestKeepSource(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	name := unique("keep")
	runWorkload(t, ctx, e, name, lab.WorkloadImage, "--restart", "always")
	if _, stderr, err := runSrc(ctx, e, name, nil, "--keep-source"); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	// Stopped, and unable to start again by itself (a dockerd restart
	// would otherwise run it on both hosts).
	if st, _ := e.h1.Docker(ctx, "inspect", "-f", "{{.State.Running}} {{.HostConfig.RestartPolicy.Name}}", name); st != "false no" {
		t.Fatalf("original on host1: %q, want a stopped container with restart policy no", st)
	}
	if st, _ := e.h2.Docker(ctx, "inspect", "-f", "{{.State.Running}}", name); st != "true" {
		t.Fatalf("copy on host2: running=%q", st)
	}
}

// assertFreezeAccounted checks the report's freeze breakdown: the source's
// dump and shipping, the destination's steps (runc restore among them,
// with CRIU's own restore figures) and the link, adding up to the freeze;
// and CRIU's dump figures, which for post-copy count the original frozen
// until the last page, never less than the freeze nor more than the whole
// migration.
func assertFreezeAccounted(t *testing.T, r *migrate.Report) {
	t.Helper()
	var sum time.Duration
	seen := map[string]time.Duration{}
	var line []string
	for _, st := range r.Freeze {
		if st.Time < 0 {
			t.Errorf("negative freeze step %+v", st)
		}
		sum += st.Time
		seen[st.Host+"/"+st.Step] = st.Time
		line = append(line, fmt.Sprintf("%s/%s %v", st.Host, st.Step, st.Time.Round(time.Millisecond)))
	}
	t.Logf("freeze %v: %s", r.FreezeTime, strings.Join(line, ", "))
	if sum != r.FreezeTime {
		t.Errorf("the freeze's steps add up to %v, the freeze was %v", sum, r.FreezeTime)
	}
	for _, want := range []string{"source/dump", "source/ship", "destination/runc-restore", "link/link"} {
		if _, ok := seen[want]; !ok {
			t.Errorf("no %s step in the freeze breakdown", want)
		}
	}
	if seen["destination/runc-restore"] <= 0 || r.Restore.RestoreMicros == 0 {
		t.Errorf("no restore time: runc restore %v, CRIU's restore %d µs", seen["destination/runc-restore"], r.Restore.RestoreMicros)
	}
	if d := r.Dump.FrozenTime; d < r.FreezeTime-r.FreezeTime/10 || d > r.TotalTime {
		t.Errorf("CRIU's frozen time %v, with a freeze of %v in a migration of %v", d, r.FreezeTime, r.TotalTime)
	}
}

// assertNamedLogKept checks that the CRIU log a failure names ("(log
// PATH)") still exists after the rollback removed the run's directory,
// and holds want.
func assertNamedLogKept(t *testing.T, stderr, want string) {
	t.Helper()
	m := regexp.MustCompile(`\(log (/[^ )]+)\)`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("the failure names no CRIU log:\n%s", stderr)
	}
	data, err := os.ReadFile(m[1])
	if err != nil || !strings.Contains(string(data), want) {
		t.Fatalf("the log the failure names, %s, is gone or lacks %q: %v", m[1], want, err)
	}
}

// assertHostsReported checks the report names both hosts' stacks as
// their Docker and CRIU say they are.
func assertHostsReported(t *testing.T, ctx context.Context, e env, r *migrate.Report) {
	t.Helper()
	out, err := exec.CommandContext(ctx, "criu", "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	criuVersion := ""
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			criuVersion = strings.TrimSpace(v)
		}
	}
	for _, c := range []struct {
		h   lab.Host
		got migrate.HostStack
	}{{e.h1, r.Hosts.Source}, {e.h2, r.Hosts.Destination}} {
		info, err := c.h.Docker(ctx, "info", "--format", "{{.ServerVersion}} {{.CgroupVersion}} {{.KernelVersion}}")
		if err != nil {
			t.Fatal(err)
		}
		want := strings.Fields(info)
		if len(want) != 3 || c.got.Docker != want[0] || fmt.Sprint(c.got.Cgroup) != want[1] || c.got.Kernel != want[2] ||
			c.got.Containerd == "" || c.got.Runc == "" || c.got.CRIU != criuVersion {
			t.Fatalf("the report says %s runs %+v; its Docker says %q, criu --version %q", c.h.Name, c.got, info, criuVersion)
		}
	}
}
