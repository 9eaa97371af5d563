package migrate

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/dockmove/dockmove/internal/docker"
	"github.com/dockmove/dockmove/internal/restoreruntime"
	"github.com/dockmove/dockmove/protocol"
)

// fakeDocker (a fake: no daemon) records what abandon asks of Docker;
// while down is set, every call fails with it (Docker not answering).
type fakeDocker struct {
	mu       sync.Mutex
	calls    []string
	paused   map[string]bool
	labelled map[string]string // container ID -> migration ID
	down     error
}

// call records call, or fails it while Docker is down.
func (f *fakeDocker) call(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down != nil {
		return f.down
	}
	f.calls = append(f.calls, call)
	return nil
}

func (f *fakeDocker) setDown(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = err
}

func (f *fakeDocker) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeDocker) Pause(_ context.Context, id string) error {
	if err := f.call("pause " + id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused[id] = true
	return nil
}

func (f *fakeDocker) Inspect(_ context.Context, id string) (container.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down != nil {
		return container.InspectResponse{}, f.down
	}
	return container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{State: &container.State{Paused: f.paused[id]}}}, nil
}

func (f *fakeDocker) Remove(_ context.Context, id string) error { return f.call("rm " + id) }

func (f *fakeDocker) ContainersWithLabel(context.Context, string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down != nil {
		return nil, f.down
	}
	return f.labelled, nil
}

func (f *fakeDocker) RemoveVolume(_ context.Context, name string) error {
	return f.call("volume rm " + name)
}

func (f *fakeDocker) RemoveImage(_ context.Context, id string) error { return f.call("rmi " + id) }

func (f *fakeDocker) Reserve(_ context.Context, network, ip, ip6, image, _, _ string) (docker.Reservation, error) {
	err := f.call("reserve " + network + "/" + ip + "," + ip6 + " " + image)
	return docker.Reservation{Network: network, IPv4: ip, IPv6: ip6, Image: image}, err
}

func (f *fakeDocker) RemoveNetwork(_ context.Context, name string) error {
	return f.call("network rm " + name)
}

func (f *fakeDocker) SetRestartPolicy(_ context.Context, id, name string, _ int) error {
	return f.call("restart " + id + " " + name)
}

// The safety core with a fake Docker: for each phase a migration can fail
// in, abandon leaves exactly what "never two running copies, never none"
// requires. Before the copy was reported restored, everything made here
// goes (container, an orphan shell labelled with the migration, volumes,
// the loaded image, the state); once reported, the copy is paused and kept
// in doubt (the source may have ended its original); a lazy copy missing
// memory goes; a post-copy whose every page arrived is kept, running. A
// reservation that made way for the copy is made again when it goes, and a
// network made for it goes with it.
func TestAbandonPerPhaseWithFakeDocker(t *testing.T) {
	removeAll := []string{"rm c1", "rm orphan", "network rm made", "reserve lan/10.0.0.5,fd78::1:5 sha256:old", "volume rm v1", "rmi sha256:img"}
	for _, c := range []struct {
		phase     string
		lazy      bool
		calls     []string
		stateKept bool
	}{
		{phasePrepared, false, removeAll, false},
		{phaseRestored, true, removeAll, false},
		{phaseRestored, false, []string{"pause c1"}, true},
		{phaseInDoubt, false, []string{"pause c1"}, true},
		{phaseComplete, true, []string{"restart c1 unless-stopped"}, false},
	} {
		t.Run(c.phase+map[bool]string{true: "-lazy"}[c.lazy], func(t *testing.T) {
			cfg := DefaultDestConfig()
			cfg.WorkDir, cfg.RuntimeState = t.TempDir(), t.TempDir()
			fake := &fakeDocker{paused: map[string]bool{}, labelled: map[string]string{"orphan": "m-1", "c1": "m-1", "other": "m-2"}}
			s := &Server{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), undoWith: fake}
			if err := os.MkdirAll(s.stateDir(), 0o700); err != nil {
				t.Fatal(err)
			}
			st := &migrationState{MigrationID: "m-1", Name: "web", Phase: c.phase, Lazy: c.lazy, ContainerID: "c1", Restart: "unless-stopped",
				Volumes: []string{"v1"}, ImageLoaded: "sha256:img", Networks: []string{"made"},
				Reservations: []docker.Reservation{{ID: "r1", Network: "lan", IPv4: "10.0.0.5", IPv6: "fd78::1:5", Image: "sha256:old"}}}
			if err := s.saveState(st); err != nil {
				t.Fatal(err)
			}
			s.abandon(context.Background(), st, errors.New("link cut"))
			if calls := fake.recorded(); !slices.Equal(calls, c.calls) {
				t.Fatalf("Docker was asked %q, want %q", calls, c.calls)
			}
			data, err := os.ReadFile(s.statePath("m-1"))
			if kept := err == nil; kept != c.stateKept {
				t.Fatalf("state kept %v, want %v", kept, c.stateKept)
			}
			if c.stateKept && !strings.Contains(string(data), `"in-doubt"`) {
				t.Fatalf("kept state is not in doubt: %s", data)
			}
		})
	}
}

// With a fake Docker that does not answer (a real client's error from a
// socket nobody listens on), abandon removes nothing it cannot and keeps
// the migration on record, the restore runtime's state of the shell too
// (without it the runtime would start the shell afresh); once Docker is
// back, the cleanup finishes by itself.
func TestAbandonWhileDockerDownWithFakeDocker(t *testing.T) {
	dead, err := docker.New("unix://" + t.TempDir() + "/none.sock")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	_, down := dead.APIVersion(context.Background())
	if !docker.Unreachable(down) {
		t.Fatalf("a socket nobody listens on: %v is not reported unreachable", down)
	}
	cfg := DefaultDestConfig()
	cfg.WorkDir, cfg.RuntimeState = t.TempDir(), t.TempDir()
	fake := &fakeDocker{paused: map[string]bool{}, labelled: map[string]string{"c1": "m-1"}, down: down}
	s := &Server{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), undoWith: fake}
	defer s.Close()
	plan, err := restoreruntime.ContainerDir(cfg.RuntimeState, "c1")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{s.stateDir(), plan} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	st := &migrationState{MigrationID: "m-1", Name: "web", Phase: phasePrepared, ContainerID: "c1", Volumes: []string{"v1"},
		Reservations: []docker.Reservation{{Network: "lan", IPv4: "10.0.0.5", Image: "sha256:old"}}}
	if err := s.saveState(st); err != nil {
		t.Fatal(err)
	}
	s.abandon(context.Background(), st, errors.New("docker start: EOF"))
	for _, p := range []string{s.statePath("m-1"), plan} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("with Docker down, %s was not kept: %v", p, err)
		}
	}
	fake.setDown(nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := os.Stat(s.statePath("m-1"))
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cleanup was not finished 10 s after Docker came back; Docker was asked %q", fake.recorded())
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := []string{"rm c1", "reserve lan/10.0.0.5, sha256:old", "volume rm v1"}
	if calls := fake.recorded(); !slices.Equal(calls, want) {
		t.Fatalf("Docker was asked %q, want %q", calls, want)
	}
	if _, err := os.Stat(plan); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the restore runtime's state outlived the shell: %v", err)
	}
}

// A copy whose "restored" record cannot be written (here its directory
// cannot be made; in the lab, a full disk) was never reported to the
// source, which resumes its original: the copy is removed, not paused in
// doubt (fake Docker).
func TestUnrecordedRestoreIsRemovedNotInDoubtWithFakeDocker(t *testing.T) {
	cfg := DefaultDestConfig()
	cfg.WorkDir, cfg.RuntimeState = t.TempDir(), t.TempDir()
	if err := os.WriteFile(stateDirOf(cfg.WorkDir), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fake := &fakeDocker{paused: map[string]bool{}, labelled: map[string]string{}}
	s := &Server{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), undoWith: fake}
	defer s.Close()
	in := &incoming{srv: s, state: migrationState{MigrationID: "m-1", Name: "web", Phase: phasePrepared, ContainerID: "c1"}}
	err := in.recordRestored()
	if err == nil {
		t.Fatal("the record was written into a file")
	}
	s.abandon(context.Background(), &in.state, err)
	if calls := fake.recorded(); !slices.Equal(calls, []string{"rm c1"}) {
		t.Fatalf("Docker was asked %q, want the copy removed", calls)
	}
}

// A destination killed while it wrote a migration's state leaves a
// temporary file beside the states; the next start removes it and
// abandons the migration whose state it has, as after any restart. Fake
// Docker.
func TestRecoverRemovesHalfWrittenStateWithFakeDocker(t *testing.T) {
	cfg := DefaultDestConfig()
	cfg.WorkDir, cfg.RuntimeState = t.TempDir(), t.TempDir()
	fake := &fakeDocker{paused: map[string]bool{}, labelled: map[string]string{}}
	s := &Server{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), undoWith: fake}
	defer s.Close()
	st := &migrationState{MigrationID: "m-2", Name: "web", Phase: phasePrepared}
	if err := s.saveState(st); err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(s.stateDir(), tmpPrefix+"m-2.json123")
	if err := os.WriteFile(half, []byte(`{"migration_id":"m-2","pha`), 0o600); err != nil {
		t.Fatal(err)
	}
	s.recover(context.Background())
	if left, _ := os.ReadDir(s.stateDir()); len(left) != 0 {
		t.Fatalf("after recovery the state directory holds %s", entryNamesOf(left))
	}
}

// TestOnlyItsSourceSettlesAMigrationInDoubtWithFakeDocker: a migration in
// doubt names its source (the name its certificate proved); another
// source the CA signed can neither commit nor remove it, and learns
// nothing of it in its handshake; its own source can.
func TestOnlyItsSourceSettlesAMigrationInDoubtWithFakeDocker(t *testing.T) {
	cfg := DefaultDestConfig()
	cfg.WorkDir, cfg.RuntimeState = t.TempDir(), t.TempDir()
	fake := &fakeDocker{paused: map[string]bool{"c1": true}, labelled: map[string]string{}}
	s := &Server{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), undoWith: fake, active: map[string]bool{}}
	defer s.Close()
	if err := os.MkdirAll(s.stateDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	st := &migrationState{MigrationID: "m-1", Name: "web", Phase: phaseInDoubt, ContainerID: "c1", Source: "host1"}
	if err := s.saveState(st); err != nil {
		t.Fatal(err)
	}
	if ids := s.inDoubtFrom("host3"); len(ids) != 0 {
		t.Fatalf("host3 is told of %q", ids)
	}
	if ids := s.inDoubtFrom("host1"); !slices.Equal(ids, []string{"m-1"}) {
		t.Fatalf("host1 is told of %q, want m-1", ids)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, commit := range []bool{false, true} {
		if state, err := s.resolve(context.Background(), &protocol.Resolve{MigrationID: "m-1", Commit: commit}, "host3", log); err == nil {
			t.Fatalf("host3 settled host1's migration (commit %v): %s", commit, state)
		}
	}
	if _, err := os.Stat(s.statePath("m-1")); err != nil || len(fake.recorded()) != 0 {
		t.Fatalf("after host3's attempts: state %v, Docker asked %q", err, fake.recorded())
	}
	state, err := s.resolve(context.Background(), &protocol.Resolve{MigrationID: "m-1", Commit: false}, "host1", log)
	if err != nil || state != protocol.OutcomeRemoved {
		t.Fatalf("host1's rollback: %q, %v", state, err)
	}
}
