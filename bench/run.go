//go:build linux

package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/reserve"
	"github.com/dockmove/dockmove/internal/workload"
	"github.com/dockmove/dockmove/migrate"
	"github.com/dockmove/dockmove/protocol"
)

// Result is one measured migration.
type Result struct {
	Workload  string `json:"workload"` // "synthetic" or "redis"
	Strategy  string `json:"strategy"`
	MemMiB    int    `json:"mem_mib"`
	DirtyRate int    `json:"dirty_pages_per_sec"`
	Rep       int    `json:"rep"`
	// FreezeAgentMs is the freeze as the agents measure it: frozen on host1
	// to running on host2 (for Docker's checkpoint: checkpoint start to
	// start returned).
	FreezeAgentMs float64 `json:"freeze_agent_ms"`
	// FreezeAppMs is the freeze as the application's client sees it: the
	// largest gap between heartbeats (redis: the slowest request).
	FreezeAppMs      float64 `json:"freeze_app_ms"`
	TotalMs          float64 `json:"total_ms"`
	MemoryCompleteMs float64 `json:"memory_complete_ms,omitempty"` // lazy: last page after the restart
	BytesWire        int64   `json:"bytes_wire"`
	CPUSourceMs      float64 `json:"cpu_source_ms"`
	CPUDestMs        float64 `json:"cpu_destination_ms"`
	// FreezeSteps is where the agents' freeze went (migrate's breakdown),
	// step by step in milliseconds, in order.
	FreezeSteps []StepMs `json:"freeze_steps_ms,omitempty"`
	// PostCopy is what the destination's lazy-pages daemon did.
	PostCopy *protocol.PostCopyStats `json:"post_copy,omitempty"`
	// Stalls is how long the synthetic workload's page writes waited from
	// just before the migration to just after it (workload.Stalls).
	Stalls *StallsMs `json:"stalls,omitempty"`
	// Check is "ok" when the application verified its state afterwards.
	Check string `json:"check"`
	Error string `json:"error,omitempty"`
}

// StallsMs is workload.Stalls in milliseconds.
type StallsMs struct {
	Writes uint64  `json:"writes"`
	Count  uint64  `json:"stalls"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// runner holds the lab and the destination agent for a whole benchmark.
type runner struct {
	cfg       Config
	h1, h2    lab.Host
	dst       *lab.Destination
	log       func(string)
	tmpfsWork string // migrate-src's work directory for StopAndCopyLocal ("": its own)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// StepMs is one step of a freeze, as "host/step" (host: source,
// destination or link).
type StepMs struct {
	Step string  `json:"step"`
	Ms   float64 `json:"ms"`
}

func freezeSteps(steps []migrate.FreezeStep) []StepMs {
	var out []StepMs
	for _, st := range steps {
		name := st.Host + "/" + st.Step
		if st.Host == st.Step {
			name = st.Step
		}
		out = append(out, StepMs{Step: name, Ms: ms(st.Time)})
	}
	return out
}

// synthetic measures one migration of the workload container.
func (r *runner) synthetic(ctx context.Context, strategy string, mib, dirty, rep int) Result {
	res := Result{Workload: "synthetic", Strategy: strategy, MemMiB: mib, DirtyRate: dirty, Rep: rep}
	name := fmt.Sprintf("bench-%s-%d-%d-%d", containerSafe(strategy), mib, dirty, rep)
	if strategy == PodmanArchive {
		mctx, cancel := context.WithTimeout(ctx, r.cfg.CaseTimeout)
		defer cancel()
		r.podmanArchive(mctx, name, mib, dirty, &res)
		return res
	}
	defer r.remove(name)
	addr, err := r.startWorkload(ctx, name, mib, dirty)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	if strategy == DockerCheckpoint {
		r.dockerCheckpoint(ctx, name, addr, &res)
	} else {
		r.migrate(ctx, name, addr, strategy, &res)
	}
	// Verified after a failure too: a rolled-back migration must leave the
	// original intact.
	res.Check = verify(ctx, addr)
	return res
}

// startWorkload runs the workload on host1 and returns its heartbeat
// address once it answers.
func (r *runner) startWorkload(ctx context.Context, name string, mib, dirty int) (string, error) {
	ip, err := r.run(ctx, name, lab.WorkloadImage, "/usr/local/bin/workload", "--mem-mib", strconv.Itoa(mib),
		"--dirty-pages-per-sec", strconv.Itoa(dirty), "--verify-every", "0")
	if err != nil {
		return "", err
	}
	addr := net.JoinHostPort(ip, strconv.Itoa(lab.WorkloadPort))
	for ctx.Err() == nil {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := workload.Query(qctx, addr, workload.CmdStatus)
		cancel()
		if err == nil {
			return addr, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", ctx.Err()
}

// run starts a container on host1's lab network and returns its address,
// claimed on the switch (an earlier case may have left it at host2's port).
func (r *runner) run(ctx context.Context, name, image string, cmd ...string) (string, error) {
	r.remove(name)
	args := append([]string{"run", "-d", "--pull", "never", "--name", name, "--network", r.h1.Network, image}, cmd...)
	if _, err := r.h1.Docker(ctx, args...); err != nil {
		return "", err
	}
	ip, err := r.h1.Docker(ctx, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+r.h1.Network+"\").IPAddress}}", name)
	if err != nil {
		return "", err
	}
	_, err = r.h1.Docker(ctx, "exec", name, "arping", "-U", "-c", "1", "-I", "eth0", ip)
	return ip, err
}

// remove deletes container name on both hosts, and the reservations the
// moves left on their home: each holds one of the home's addresses for
// good (until removed by hand), and a bench's moves used up host1's range.
func (r *runner) remove(name string) {
	ctx := context.Background()
	for _, h := range []lab.Host{r.h1, r.h2} {
		h.Docker(ctx, "rm", "-f", name)
		if ids, _ := h.Docker(ctx, "ps", "-aq", "--filter", "label="+reserve.Label); ids != "" {
			h.Docker(ctx, append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
	}
}

// migrate runs migrate-src while a client watches the heartbeat stream.
func (r *runner) migrate(ctx context.Context, name, addr, strategy string, res *Result) {
	watch, err := workload.Watch(ctx, addr)
	if err != nil {
		res.Error = err.Error()
		return
	}
	if err := watch.WaitBeats(ctx, 20); err != nil {
		res.Error = err.Error()
		return
	}
	// Page write stalls count from here.
	if _, err := workload.QueryStalls(ctx, addr); err != nil {
		res.Error = err.Error()
		return
	}
	cpuDst := r.dst.CPUTime()
	mctx, cancel := context.WithTimeout(ctx, r.cfg.CaseTimeout)
	run := lab.RunSource(mctx, r.h1, r.h2, r.cfg.Bin, name, nil, r.agentArgs(strategy)...)
	timedOut := mctx.Err() != nil && ctx.Err() == nil
	cancel()
	res.CPUDestMs = ms(r.dst.CPUTime() - cpuDst)
	res.CPUSourceMs = ms(run.CPU)
	// A few more beats, so the first one after the restart is counted. A
	// rolled-back post-copy may leave the stream stalled: bounded wait.
	bctx, bcancel := context.WithTimeout(ctx, 30*time.Second)
	watch.WaitBeats(bctx, watch.Stats().Beats+20)
	bcancel()
	st := watch.Stop()
	if s, err := workload.QueryStalls(ctx, addr); err == nil {
		res.Stalls = &StallsMs{Writes: s.Writes, Count: s.Count, P50Ms: ms(s.P50), P99Ms: ms(s.P99), MaxMs: ms(s.Max)}
	}
	if timedOut {
		// The client saw the freeze; the agents' report is lost with the
		// interrupted run.
		res.FreezeAppMs = ms(st.MaxGap)
		res.Error = fmt.Sprintf("not complete after %s, interrupted (the migration rolled back): %s", r.cfg.CaseTimeout, whyFailed(run.Stderr))
		return
	}
	if run.Err != nil {
		res.Error = fmt.Sprintf("%v: %s", run.Err, run.Stderr)
		return
	}
	var rep migrate.Report
	if err := json.Unmarshal(run.Report, &rep); err != nil {
		res.Error = err.Error()
		return
	}
	res.FreezeAgentMs = ms(rep.FreezeTime)
	res.FreezeSteps = freezeSteps(rep.Freeze)
	res.FreezeAppMs = ms(st.MaxGap)
	res.TotalMs = ms(rep.TotalTime)
	res.MemoryCompleteMs = ms(rep.MemoryTime)
	res.PostCopy = rep.PostCopy
	res.BytesWire = rep.BytesWire + rep.PageBytesWire
	if st.SeqBreaks != 0 || st.Resets != 0 {
		res.Error = fmt.Sprintf("heartbeat stream broke: %+v", st)
	}
}

// dockerCheckpoint is the baseline: `docker checkpoint create` then
// `docker start --checkpoint` of the same container on one host. Docker's
// checkpoint refuses established TCP connections, so the client polls with
// a new connection every few milliseconds instead of holding a stream, and
// holds off while the checkpoint runs.
func (r *runner) dockerCheckpoint(ctx context.Context, name, addr string, res *Result) {
	p := startPoller(ctx, addr)
	p.waitAnswers(ctx, 20)
	p.pause()
	took, err := dockerCR(ctx, r.h1, name)
	res.FreezeAgentMs = ms(took)
	res.TotalMs = res.FreezeAgentMs
	p.resume()
	if err != nil {
		p.stop()
		res.Error = err.Error()
		return
	}
	p.waitAnswers(ctx, 20)
	res.FreezeAppMs = ms(p.stop())
}

// verify has the workload check every page.
func verify(ctx context.Context, addr string) string {
	qctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	b, err := workload.Query(qctx, addr, workload.CmdVerify)
	switch {
	case err != nil:
		return "verify: " + err.Error()
	case b.Bad != 0:
		return fmt.Sprintf("%d bad pages", b.Bad)
	}
	return "ok"
}

// whyFailed picks migrate-src's own verdict from its standard error.
func whyFailed(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for _, l := range lines {
		if strings.Contains(l, "was not migrated") {
			return l
		}
	}
	return lines[len(lines)-1]
}

// containerSafe makes a strategy name usable in a container name.
func containerSafe(strategy string) string { return strings.ReplaceAll(strategy, ":", "-") }
