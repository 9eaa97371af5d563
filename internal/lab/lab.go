// Package lab is the Go side of scripts/lab.sh: the two Docker hosts that run
// on one machine for tests and benchmarks. The shell script is the single
// source of the lab's settings; this package reads them from `lab.sh env`.
package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Images built by scripts/images.sh and loaded into both hosts.
const (
	BusyboxImage  = "dockmove/busybox:lab"
	WorkloadImage = "dockmove/workload:lab"
	// PostgresImage runs PostgreSQL 15 (Debian's) with a local client on
	// its Unix socket; NginxImage runs nginx (Debian's) serving /big.
	PostgresImage = "dockmove/postgres:lab"
	// RedisImage runs redis-server (Debian's), without persistence.
	RedisImage = "dockmove/redis:lab"
	NginxImage = "dockmove/nginx:lab"
	// WorkloadPort is the heartbeat port of the workload image.
	WorkloadPort = 7000
)

// ErrNotUp reports that the lab (or one of its hosts) is not running.
var ErrNotUp = errors.New("lab: not up (run: make lab-up)")

// Host is one of the lab's Docker hosts.
type Host struct {
	Name       string // "host1" ... "host4"
	Modern     bool   // Docker 28 from the Debian testing root (host3, host4)
	Netns      string // path of its network namespace
	Addr       string // its eth0 address on the lab switch
	DockerHost string // DOCKER_HOST of its dockerd
	IPRange    string // container addresses it hands out on Network
	Config     string // its dockerd's daemon.json
	PIDFile    string // its dockerd's pidfile
	ExecRoot   string // its dockerd's exec root (its containerd's socket is under it)
	Network    string // the macvlan network both hosts share
	Subnet     string
	Gateway    string // the switch's address in the root network namespace
	Switch     string // the switch: a bridge in the root network namespace
	// The second segment, for containers on two networks: a macvlan
	// network on the host's eth1, cabled to its own switch.
	Network2, Subnet2, Gateway2, Switch2, IPRange2 string
	// Its IPv6 pool (the second segment is dual-stack): the subnet and
	// the host's own range in it.
	Subnet2V6, IPRange2V6 string
}

// RepoRoot finds the module root from the working directory upwards.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "lab.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("lab: scripts/lab.sh not found above the working directory")
		}
		dir = parent
	}
}

// Load reads host name's settings from lab.sh.
func Load(ctx context.Context, name string) (Host, error) {
	root, err := RepoRoot()
	if err != nil {
		return Host{}, err
	}
	out, err := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "lab.sh"), "env", name).Output()
	if err != nil {
		return Host{}, fmt.Errorf("lab env %s: %w", name, err)
	}
	h := Host{Name: name}
	fields := map[string]*string{
		"LAB_NETNS": &h.Netns, "LAB_ADDR": &h.Addr, "LAB_DOCKER_HOST": &h.DockerHost,
		"LAB_IP_RANGE": &h.IPRange, "LAB_CONFIG": &h.Config, "LAB_PIDFILE": &h.PIDFile, "LAB_EXEC_ROOT": &h.ExecRoot, "LAB_NETWORK": &h.Network,
		"LAB_SUBNET": &h.Subnet, "LAB_GATEWAY": &h.Gateway, "LAB_SWITCH": &h.Switch,
		"LAB_NETWORK2": &h.Network2, "LAB_SUBNET2": &h.Subnet2, "LAB_GATEWAY2": &h.Gateway2, "LAB_SWITCH2": &h.Switch2, "LAB_IP_RANGE2": &h.IPRange2,
		"LAB_SUBNET2_V6": &h.Subnet2V6, "LAB_IP_RANGE2_V6": &h.IPRange2V6,
	}
	var flavour string
	fields["LAB_FLAVOUR"] = &flavour
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && fields[k] != nil {
			*fields[k] = v
		}
	}
	for k, v := range fields {
		if *v == "" {
			return Host{}, fmt.Errorf("lab env %s: %s missing", name, k)
		}
	}
	h.Modern = flavour == "modern"
	return h, nil
}

// Up reports whether the host's network namespace and dockerd are running.
func (h Host) Up(ctx context.Context) error {
	if _, err := os.Stat(h.Netns); err != nil {
		return fmt.Errorf("%w: %s has no netns %s", ErrNotUp, h.Name, h.Netns)
	}
	if _, err := h.Docker(ctx, "version", "--format", "{{.Server.APIVersion}}"); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNotUp, h.Name, err)
	}
	return nil
}

// Command prepares name inside the host's network namespace with DOCKER_HOST
// pointing at its dockerd, as `lab.sh on HOST` does.
func (h Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := append([]string{"--net=" + h.Netns, "env", "DOCKER_HOST=" + h.DockerHost, name}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", argv...)
	// A cancelled context interrupts the agent as a person would (it then
	// rolls back); it is killed only if it does not exit in time.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	return cmd
}

// Docker runs the docker CLI against the host's daemon and returns its
// trimmed standard output; a failure carries the CLI's standard error.
func (h Host) Docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", append([]string{"-H", h.DockerHost}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("docker %s on %s: %w: %s", strings.Join(args, " "), h.Name, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), nil
}
