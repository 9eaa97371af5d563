package migrate

import (
	"errors"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/storage"
	"github.com/docker/go-connections/nat"

	"github.com/dockmove/dockmove/internal/reserve"
)

// movable returns the description of a container dockmove can move; each
// refusal case breaks one thing.
func movable() container.InspectResponse {
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{
			ID:          strings.Repeat("a", 64),
			State:       &container.State{Running: true, Pid: 42},
			HostConfig:  &container.HostConfig{NetworkMode: "dmlab", IpcMode: "private"},
			GraphDriver: storage.DriverData{Name: "overlay2"},
		},
		Config:          &container.Config{Image: "img"},
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{"dmlab": {}}},
	}
}

func TestRefusalsNameEveryReason(t *testing.T) {
	yes := true
	tests := []struct {
		name   string
		modify func(r *container.InspectResponse)
		want   string
	}{
		{"movable", func(*container.InspectResponse) {}, ""},
		{"stopped", func(r *container.InspectResponse) { r.State.Running = false }, "not running"},
		{"paused", func(r *container.InspectResponse) { r.State.Paused = true }, "paused"},
		{"host network", func(r *container.InspectResponse) { r.HostConfig.NetworkMode = "host" }, "host's network"},
		{"shared network", func(r *container.InspectResponse) { r.HostConfig.NetworkMode = "container:x" }, "another container's network"},
		{"host pid", func(r *container.InspectResponse) { r.HostConfig.PidMode = "host" }, "PID namespace"},
		{"host ipc", func(r *container.InspectResponse) { r.HostConfig.IpcMode = "host" }, "IPC namespace"},
		{"shareable ipc", func(r *container.InspectResponse) { r.HostConfig.IpcMode = "shareable" }, "IPC namespace"},
		{"host userns", func(r *container.InspectResponse) { r.HostConfig.UsernsMode = "host" }, "user namespace"},
		{"privileged", func(r *container.InspectResponse) { r.HostConfig.Privileged = true }, "privileged"},
		{"a reservation", func(r *container.InspectResponse) {
			r.Config.Labels = map[string]string{reserve.Label: "dmlab/10.77.0.70"}
		}, "reservation of address dmlab/10.77.0.70"},
		{"moved here before", func(r *container.InspectResponse) {
			r.Config.Labels = map[string]string{LabelMigration: "m-1"} // dropped from the spec, see TestOwnLabelsStayHome
		}, ""},
		{"devices", func(r *container.InspectResponse) {
			r.HostConfig.Devices = []container.DeviceMapping{{PathOnHost: "/dev/fuse"}}
		}, "devices"},
		{"init", func(r *container.InspectResponse) { r.HostConfig.Init = &yes }, ""}, // its docker-init travels
		{"published ports", func(r *container.InspectResponse) {
			r.HostConfig.PortBindings = nat.PortMap{"80/tcp": {{HostPort: "8080"}}}
		}, ""},
		{"two networks", func(r *container.InspectResponse) {
			r.NetworkSettings.Networks["other"] = &network.EndpointSettings{}
		}, ""},
		{"other storage driver", func(r *container.InspectResponse) { r.GraphDriver.Name = "vfs" }, "storage driver"},
		{"bind mount", func(r *container.InspectResponse) {
			r.Mounts = []container.MountPoint{{Type: "bind", Source: "/srv", Destination: "/data"}}
		}, "--bind-mounts copy ships its contents"},
		{"volume subpath", func(r *container.InspectResponse) {
			r.HostConfig.Mounts = []mount.Mount{{Type: "volume", Source: "v", Target: "/data", VolumeOptions: &mount.VolumeOptions{Subpath: "sub"}}}
		}, "/data mounts the subdirectory sub of volume v"},
		{"volume without copy", func(r *container.InspectResponse) {
			r.HostConfig.Mounts = []mount.Mount{{Type: "volume", Source: "v", Target: "/data", VolumeOptions: &mount.VolumeOptions{NoCopy: true}}}
		}, ""},
		{"bind propagation", func(r *container.InspectResponse) {
			r.HostConfig.Mounts = []mount.Mount{{Type: "bind", Source: "/srv", Target: "/data", BindOptions: &mount.BindOptions{Propagation: "rshared"}}}
		}, "/data is a bind mount with propagation"},
		{"remote volume", func(r *container.InspectResponse) {
			r.Mounts = []container.MountPoint{{Type: "volume", Name: "v", Driver: "nfs", Destination: "/data"}}
		}, "uses driver nfs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := movable()
			tt.modify(&r)
			err := refusals(r, "")
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused a movable container: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrCannotMove) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want a refusal naming %q", err, tt.want)
			}
		})
	}
}
