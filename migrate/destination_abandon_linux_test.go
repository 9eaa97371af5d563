package migrate

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/dockmove/dockmove/internal/docker"
)

// fakeDocker (a fake: no daemon) records what abandon asks of Docker.
type fakeDocker struct {
	calls    []string
	paused   map[string]bool
	labelled map[string]string // container ID -> migration ID
}

func (f *fakeDocker) Pause(_ context.Context, id string) error {
	f.calls = append(f.calls, "pause "+id)
	f.paused[id] = true
	return nil
}

func (f *fakeDocker) Inspect(_ context.Context, id string) (container.InspectResponse, error) {
	return container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{State: &container.State{Paused: f.paused[id]}}}, nil
}

func (f *fakeDocker) Remove(_ context.Context, id string) error {
	f.calls = append(f.calls, "rm "+id)
	return nil
}

func (f *fakeDocker) ContainersWithLabel(context.Context, string) (map[string]string, error) {
	return f.labelled, nil
}

func (f *fakeDocker) RemoveVolume(_ context.Context, name string) error {
	f.calls = append(f.calls, "volume rm "+name)
	return nil
}

func (f *fakeDocker) RemoveImage(_ context.Context, id string) error {
	f.calls = append(f.calls, "rmi "+id)
	return nil
}

func (f *fakeDocker) Reserve(_ context.Context, network, ip, image, _, _ string) (docker.Reservation, error) {
	f.calls = append(f.calls, "reserve "+network+"/"+ip+" "+image)
	return docker.Reservation{Network: network, IPv4: ip, Image: image}, nil
}

func (f *fakeDocker) RemoveNetwork(_ context.Context, name string) error {
	f.calls = append(f.calls, "network rm "+name)
	return nil
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
	removeAll := []string{"rm c1", "rm orphan", "network rm made", "reserve lan/10.0.0.5 sha256:old", "volume rm v1", "rmi sha256:img"}
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
		{phaseComplete, true, nil, false},
	} {
		t.Run(c.phase+map[bool]string{true: "-lazy"}[c.lazy], func(t *testing.T) {
			cfg := DefaultDestConfig()
			cfg.WorkDir, cfg.RuntimeState = t.TempDir(), t.TempDir()
			fake := &fakeDocker{paused: map[string]bool{}, labelled: map[string]string{"orphan": "m-1", "c1": "m-1", "other": "m-2"}}
			s := &Server{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), undoWith: fake}
			if err := os.MkdirAll(s.stateDir(), 0o700); err != nil {
				t.Fatal(err)
			}
			st := &migrationState{MigrationID: "m-1", Name: "web", Phase: c.phase, Lazy: c.lazy, ContainerID: "c1",
				Volumes: []string{"v1"}, ImageLoaded: "sha256:img", Networks: []string{"made"},
				Reservations: []docker.Reservation{{ID: "r1", Network: "lan", IPv4: "10.0.0.5", Image: "sha256:old"}}}
			if err := s.saveState(st); err != nil {
				t.Fatal(err)
			}
			s.abandon(context.Background(), st, errors.New("link cut"))
			if !slices.Equal(fake.calls, c.calls) {
				t.Fatalf("Docker was asked %q, want %q", fake.calls, c.calls)
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
