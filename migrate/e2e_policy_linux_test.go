package migrate_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/migrate"
)

// TestDestinationRefusesCapabilitiesOutsideItsPolicy: a container that adds capabilities
// beyond Docker's default set (here SYS_ADMIN and NET_ADMIN, with which a
// container can escape or rewire its host) is refused by the destination
// itself, before anything is frozen, naming them; the container runs on
// and host2 holds nothing. With `migrate-dst --allow-cap` naming them the
// same container moves, and keeps them.
func TestDestinationRefusesCapabilitiesOutsideItsPolicy(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	name := unique("caps")
	addr := runWorkload(t, ctx, e, name, lab.WorkloadImage, "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN", "--cap-add", "CHOWN")
	before := waitBeat(t, ctx, addr, 0)

	strict := startDst(t, e)
	report, stderr, err := runSrc(ctx, e, name, nil)
	failedMigration(t, ctx, e, name, addr, before, err, stderr, "capabilities this destination does not allow")
	if !strings.Contains(stderr, "SYS_ADMIN") || !strings.Contains(stderr, "NET_ADMIN") || strings.Contains(stderr, "CHOWN") {
		t.Fatalf("the refusal should name SYS_ADMIN and NET_ADMIN, not CHOWN (a default):\n%s", stderr)
	}
	if _, frozen := report.Stages["dump"]; frozen {
		t.Fatalf("the container was frozen before the refusal: stages %v", report.Stages)
	}
	if _, asked := report.Stages["preflight"]; !asked {
		t.Fatalf("no preflight in the report (stages %v): the check above proves nothing", report.Stages)
	}
	if after := waitBeat(t, ctx, addr, before.Counter+1); after.Bad != 0 {
		t.Fatalf("after the refusal: %+v", after)
	}
	assertHost2Clean(t, ctx, e, name, true)
	strict.Stop()

	startDst(t, e, "--allow-cap", "sys_admin,NET_ADMIN")
	if _, stderr, err := runSrc(ctx, e, name, nil); err != nil {
		t.Fatalf("migration with the capabilities allowed: %v\n%s", err, stderr)
	}
	caps, err := e.h2.Docker(ctx, "inspect", "-f", "{{.HostConfig.CapAdd}}", name)
	if err != nil || !strings.Contains(caps, "SYS_ADMIN") || !strings.Contains(caps, "NET_ADMIN") {
		t.Fatalf("capabilities on host2: %q, %v", caps, err)
	}
	if v := waitBeat(t, ctx, addr, 0); v.Bad != 0 {
		t.Fatalf("on host2: %+v", v)
	}
}

// TestDestinationRefusesLabelsOutsideItsPolicy: host2's proxy routes by
// traefik.* labels, so its migrate-dst refuses them (--deny-label): a
// container carrying one is refused before anything is frozen, naming the
// label; the container runs on and host2 holds nothing. Without that
// policy the same container moves with its labels, except dockmove's own
// bookkeeping from an earlier move, which stays behind (host2 labels it
// with this migration).
func TestDestinationRefusesLabelsOutsideItsPolicy(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	name := unique("labels")
	addr := runWorkload(t, ctx, e, name, lab.WorkloadImage, "--label", "traefik.http.routers.web.rule=Host(`shop.example`)",
		"--label", "app=shop", "--label", migrate.LabelMigration+"=an-earlier-move")
	before := waitBeat(t, ctx, addr, 0)

	strict := startDst(t, e, "--deny-label", "traefik.*")
	report, stderr, err := runSrc(ctx, e, name, nil)
	failedMigration(t, ctx, e, name, addr, before, err, stderr, "labels this destination refuses")
	if !strings.Contains(stderr, "traefik.http.routers.web.rule") || strings.Contains(stderr, migrate.LabelMigration) {
		t.Fatalf("the refusal should name the traefik label, and not dockmove's own (the source leaves it behind):\n%s", stderr)
	}
	if _, frozen := report.Stages["dump"]; frozen {
		t.Fatalf("the container was frozen before the refusal: stages %v", report.Stages)
	}
	assertHost2Clean(t, ctx, e, name, true)
	strict.Stop()

	startDst(t, e)
	if _, stderr, err := runSrc(ctx, e, name, nil); err != nil {
		t.Fatalf("migration without the label policy: %v\n%s", err, stderr)
	}
	for key, want := range map[string]string{"traefik.http.routers.web.rule": "Host(`shop.example`)", "app": "shop"} {
		got, err := e.h2.Docker(ctx, "inspect", "-f", "{{index .Config.Labels \""+key+"\"}}", name)
		if err != nil || got != want {
			t.Errorf("label %s on host2: %q, %v; want %q", key, got, err, want)
		}
	}
	if got, err := e.h2.Docker(ctx, "inspect", "-f", "{{index .Config.Labels \""+migrate.LabelMigration+"\"}}", name); err != nil || got == "" || got == "an-earlier-move" {
		t.Errorf("host2's migration label: %q, %v; want this migration's ID", got, err)
	}
	if v := waitBeat(t, ctx, addr, 0); v.Bad != 0 {
		t.Fatalf("on host2: %+v", v)
	}
}

// TestImageNameTakenOnHost2IsNotRepointed: the container's image is named
// on host2 already, by another image (host2's own). The image travels
// untagged, the container runs from it, and host2's name still points at
// host2's image: a source cannot re-point a destination's tags.
func TestImageNameTakenOnHost2IsNotRepointed(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	startDst(t, e)
	image := "dockmove/taken:" + unique("t")
	commitImage(t, ctx, e, image, "from-host1")
	if _, err := e.h2.Docker(ctx, "tag", lab.BusyboxImage, image); err != nil {
		t.Fatal(err)
	}
	host2Own, err := e.h2.Docker(ctx, "image", "inspect", "-f", "{{.Id}}", image)
	if err != nil {
		t.Fatal(err)
	}
	name := unique("taken")
	addr := runWorkload(t, ctx, e, name, image)
	if _, stderr, err := runSrc(ctx, e, name, nil); err != nil {
		t.Fatalf("migration failed: %v\n%s", err, stderr)
	}
	if now, _ := e.h2.Docker(ctx, "image", "inspect", "-f", "{{.Id}}", image); now != host2Own {
		t.Fatalf("host2's %s was re-pointed: %s, was %s", image, now, host2Own)
	}
	if loaded, err := e.h2.Docker(ctx, "inspect", "-f", "{{.Image}}", name); err == nil {
		// Untagged on host2: remove it by ID once the container is gone.
		t.Cleanup(func() {
			cleanupDocker(e.h2, "rm", "-f", name)
			cleanupDocker(e.h2, "rmi", loaded)
		})
	}
	if out, err := e.h2.Docker(ctx, "exec", name, "cat", "/layer"); err != nil || out != "from-host1" {
		t.Fatalf("the container on host2 does not run host1's image: %q, %v", out, err)
	}
	if b := waitBeat(t, ctx, addr, 0); b.Bad != 0 {
		t.Fatalf("on host2: %+v", b)
	}
}

// TestDestinationAdmitsOnlyAllowedSources: a destination with
// --allow-source that does not name host1 refuses host1's (valid,
// CA-signed) certificate, tells migrate-src why, and the container runs on
// on host1 with nothing left on host2; naming host1 lets the same
// container move. Real TLS with the lab's certificates.
func TestDestinationAdmitsOnlyAllowedSources(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, 3*time.Minute)
	name := unique("allow")
	addr := runWorkload(t, ctx, e, name, lab.WorkloadImage)
	before := waitBeat(t, ctx, addr, 0)

	strict := startDst(t, e, "--allow-source", "some-other-host")
	report, stderr, err := runSrc(ctx, e, name, nil)
	failedMigration(t, ctx, e, name, addr, before, err, stderr, "is not allowed here")
	if !strings.Contains(stderr, e.h1.Name) {
		t.Fatalf("the refusal should name the source %s:\n%s", e.h1.Name, stderr)
	}
	if _, frozen := report.Stages["dump"]; frozen {
		t.Fatalf("the container was frozen before the refusal: stages %v", report.Stages)
	}
	if !strings.Contains(strict.Log(), "not allowed") {
		t.Fatalf("migrate-dst did not log the refusal:\n%s", strict.Log())
	}
	assertHost2Clean(t, ctx, e, name, true)
	strict.Stop()

	startDst(t, e, "--allow-source", "some-other-host,"+e.h1.Name)
	if _, stderr, err := runSrc(ctx, e, name, nil); err != nil {
		t.Fatalf("migration from an allowed source: %v\n%s", err, stderr)
	}
	if v := waitBeat(t, ctx, addr, 0); v.Bad != 0 {
		t.Fatalf("on host2: %+v", v)
	}
}

// TestCreateVolumeRefusesAVolumeItDidNotMake: Docker's volume create hands
// back an existing volume of the same name; the destination's CreateVolume
// refuses one without its migration label (made by someone else between
// the preflight and the container's creation), and makes a new one
// labelled. Real dockerd on host2.
func TestCreateVolumeRefusesAVolumeItDidNotMake(t *testing.T) {
	e := setup(t)
	ctx := ctxFor(t, time.Minute)
	dk, err := docker.New(e.h2.DockerHost)
	if err != nil {
		t.Fatal(err)
	}
	defer dk.Close()
	theirs, ours := unique("theirs"), unique("ours")
	if _, err := e.h2.Docker(ctx, "volume", "create", theirs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cleanupDocker(e.h2, "volume", "rm", "-f", theirs)
		cleanupDocker(e.h2, "volume", "rm", "-f", ours)
	})
	labels := map[string]string{migrate.LabelMigration: "m-test"}
	if _, err := dk.CreateVolume(ctx, theirs, labels); !errors.Is(err, docker.ErrVolumeTaken) {
		t.Fatalf("existing volume: got %v, want ErrVolumeTaken", err)
	}
	mp, err := dk.CreateVolume(ctx, ours, labels)
	if err != nil || mp == "" {
		t.Fatalf("new volume: %q, %v", mp, err)
	}
	got, err := e.h2.Docker(ctx, "volume", "inspect", "-f", "{{index .Labels \""+migrate.LabelMigration+"\"}}", ours)
	if err != nil || strings.TrimSpace(got) != "m-test" {
		t.Fatalf("label of the new volume: %q, %v", got, err)
	}
}
