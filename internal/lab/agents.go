package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dockmove/dockmove/internal/events"
)

// The lab's agents: migrate-dst on host2 and migrate-src runs on host1,
// each a real process in its host's network namespace, talking TLS over
// the lab switch. Tests and benchmarks share these.

const (
	// TLSDir holds the lab's credentials (scripts/lab-runtime.sh).
	TLSDir = "/var/lib/dockmove-lab/tls"
	// AgentPort is where the lab's migrate-dst listens.
	AgentPort = "7070"
)

// WorkDir is an agent's work directory on host h.
func (h Host) WorkDir() string { return filepath.Join("/var/lib/dockmove-lab", h.Name, "work") }

// ContainerdSock is the socket of the containerd h's dockerd manages.
func (h Host) ContainerdSock() string {
	return filepath.Join(h.ExecRoot, "containerd", "containerd.sock")
}

// RuntimeState is the restore runtime's state directory on host h.
func (h Host) RuntimeState() string { return filepath.Join(filepath.Dir(h.Config), "runtime") }

// Destination is a running migrate-dst.
type Destination struct {
	host Host
	args []string
	bin  string
	cmd  *exec.Cmd
	log  syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// PeerTimeouts are the lab agents' keepalive period and dead-peer timeout:
// shorter than the agents' defaults (5 s, 10 s), so that tests that cut
// the link, and the guard's announcements that last as long as a peer may
// take to notice, wait less. DOCKMOVE_LAB_PEER_TIMEOUTS=KEEPALIVE,DEADPEER
// sets others (the VM tier uses the defaults: its emulated CPU can hold a
// ping back for seconds).
func PeerTimeouts() (keepAlive, deadPeer time.Duration) {
	keepAlive, deadPeer = 2*time.Second, 5*time.Second
	if v := os.Getenv("DOCKMOVE_LAB_PEER_TIMEOUTS"); v != "" {
		a, b, _ := strings.Cut(v, ",")
		ka, err1 := time.ParseDuration(a)
		dp, err2 := time.ParseDuration(b)
		if err1 == nil && err2 == nil && ka > 0 && dp > 0 {
			return ka, dp
		}
	}
	return keepAlive, deadPeer
}

// LinkCutFor is how long a test cuts the link for the agents to notice:
// both sessions die of their keepalives well within it.
func LinkCutFor() time.Duration {
	ka, dp := PeerTimeouts()
	return ka + dp + 5*time.Second
}

// peerArgs are the agents' flags for PeerTimeouts.
func peerArgs() []string {
	ka, dp := PeerTimeouts()
	return []string{"--keepalive", ka.String(), "--dead-peer-timeout", dp.String()}
}

// StartDestination runs bin/migrate-dst on h and waits until it listens.
func StartDestination(h Host, bin string, extra ...string) (*Destination, error) {
	d := &Destination{host: h, bin: bin, args: append([]string{
		"--listen", net.JoinHostPort(h.Addr, AgentPort),
		"--docker-host", h.DockerHost,
		"--work-dir", h.WorkDir(),
		"--runtime-state", h.RuntimeState(),
		"--tls-dir", filepath.Join(TLSDir, h.Name),
	}, append(peerArgs(), extra...)...)}
	return d, d.Start()
}

// Pid is the running agent's process ID.
func (d *Destination) Pid() int { return d.cmd.Process.Pid }

// Start (re)starts the agent and returns once it accepts migrations (its
// "ready" event), or with its log when it does not.
func (d *Destination) Start() error {
	args := append([]string{"--events", "/dev/fd/3"}, d.args...)
	d.cmd = d.host.Command(context.Background(), filepath.Join(d.bin, "migrate-dst"), args...)
	pr, pw := io.Pipe()
	d.cmd.Stderr = pw
	er, ew, err := os.Pipe()
	if err != nil {
		return err
	}
	d.cmd.ExtraFiles = []*os.File{ew}
	if err := d.cmd.Start(); err != nil {
		er.Close()
		ew.Close()
		return err
	}
	ew.Close()
	d.done = make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			fmt.Fprintln(&d.log, sc.Text())
		}
	}()
	ready := make(chan struct{})
	go func() {
		defer er.Close()
		dec := json.NewDecoder(er)
		for {
			var ev events.Event
			if dec.Decode(&ev) != nil {
				return
			}
			if ev.Event == "ready" {
				close(ready)
				io.Copy(io.Discard, er) // until the agent exits
				return
			}
		}
	}()
	go func() { d.cmd.Wait(); pw.Close(); close(d.done) }()
	select {
	case <-ready:
		return nil
	case <-d.done:
		return fmt.Errorf("migrate-dst exited: %s", d.log.String())
	case <-time.After(30 * time.Second):
		d.Kill()
		return fmt.Errorf("migrate-dst was not ready within 30s: %s", d.log.String())
	}
}

// Log is what the agent wrote so far.
func (d *Destination) Log() string { return d.log.String() }

// Kill ends the agent at once (SIGKILL).
func (d *Destination) Kill() {
	d.cmd.Process.Kill()
	<-d.done
}

// Stop ends the agent gracefully.
func (d *Destination) Stop() {
	d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		d.Kill()
	}
}

// CPUTime is the CPU the agent and its waited-for children (CRIU's
// lazy-pages daemon) have used so far.
func (d *Destination) CPUTime() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces): state is 3rd.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	var ticks int64
	for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
		v, _ := strconv.ParseInt(fields[i], 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// SourceRun is the outcome of one migrate-src run.
type SourceRun struct {
	Report []byte // its --json output
	Stderr string
	Events []events.Event // its --events stream
	CPU    time.Duration  // user+system of migrate-src and CRIU
	Err    error
}

// RunSource runs bin/migrate-src on h1 for container name towards h2's
// migrate-dst. onStage, if set, sees each stage as migrate-src's event
// stream announces it, with a function that kills migrate-src (SIGKILL).
func RunSource(ctx context.Context, h1, h2 Host, bin, name string, onStage func(stage string, kill func()), extra ...string) SourceRun {
	args := append([]string{
		"--to", net.JoinHostPort(h2.Addr, AgentPort),
		"--docker-host", h1.DockerHost,
		"--work-dir", h1.WorkDir(),
		"--tls-dir", filepath.Join(TLSDir, h1.Name),
		"--events", "/dev/fd/3",
		"--json"}, append(peerArgs(), extra...)...)
	if name != "" { // "" when extra names the target (--pid)
		args = append(args, name)
	}
	cmd := h1.Command(ctx, filepath.Join(bin, "migrate-src"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	er, ew, err := os.Pipe()
	if err != nil {
		return SourceRun{Err: err}
	}
	cmd.ExtraFiles = []*os.File{ew}
	if err := cmd.Start(); err != nil {
		er.Close()
		ew.Close()
		return SourceRun{Err: err}
	}
	ew.Close()
	var seen []events.Event
	dec := json.NewDecoder(er)
	for {
		var ev events.Event
		if dec.Decode(&ev) != nil {
			break
		}
		seen = append(seen, ev)
		if onStage != nil && ev.Event == "stage" {
			onStage(ev.Stage, func() { cmd.Process.Kill() })
		}
	}
	er.Close()
	err = cmd.Wait()
	run := SourceRun{Report: stdout.Bytes(), Stderr: stderr.String(), Events: seen, Err: err}
	if cmd.ProcessState != nil {
		run.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return run
}
