//go:build linux

package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dockmove/dockmove/internal/criu"
	"github.com/dockmove/dockmove/internal/lab"
)

// Report is a whole benchmark run.
type Report struct {
	Date    string `json:"date"`
	Machine string `json:"machine"`
	Hosts   string `json:"hosts,omitempty"` // source -> destination, with their Docker versions
	// Link is the shaping of the link between them (nil: the lab's veth).
	Link    *LinkProfile `json:"link,omitempty"`
	Config  Config       `json:"config"`
	Notes   []string     `json:"notes,omitempty"`
	Results []Result     `json:"results"`
	Summary []Summary    `json:"summary"`
}

// Summary aggregates the repetitions of one case.
type Summary struct {
	Workload  string `json:"workload"`
	Strategy  string `json:"strategy"`
	MemMiB    int    `json:"mem_mib"`
	DirtyRate int    `json:"dirty_pages_per_sec"`
	Runs      int    `json:"runs"`
	Failed    int    `json:"failed"`
	// Min and median over the successful runs.
	FreezeAgentMinMs float64 `json:"freeze_agent_min_ms"`
	FreezeAgentMedMs float64 `json:"freeze_agent_median_ms"`
	FreezeAppMinMs   float64 `json:"freeze_app_min_ms"`
	FreezeAppMedMs   float64 `json:"freeze_app_median_ms"`
	TotalMedMs       float64 `json:"total_median_ms"`
	BytesWireMed     int64   `json:"bytes_wire_median"`
	CPUMedMs         float64 `json:"cpu_agents_median_ms"`
	// DockerRatio is the Docker baseline's median agent-measured freeze
	// divided by this case's (same workload, size and dirty rate): how many
	// times shorter the freeze is. 0 when there is no baseline.
	DockerRatio float64 `json:"docker_ratio"`
	// PodmanRatio is the same against Podman's archive migration
	// (PodmanArchive), 0 when it was not measured.
	PodmanRatio float64 `json:"podman_ratio,omitempty"`
	// LocalDumpMs, for stop-and-copy, is how long CRIU alone took to dump
	// the same container to local tmpfs in the same run (the median dump
	// step of StopAndCopyLocal), and OverLocalDump the freeze divided by
	// it (target: at most 1.3). 0 when that variant was not measured.
	LocalDumpMs   float64 `json:"local_dump_ms,omitempty"`
	OverLocalDump float64 `json:"over_local_dump,omitempty"`
	// FreezeSteps are the median of each step of the freeze, in order.
	FreezeSteps []StepMs `json:"freeze_steps_median_ms,omitempty"`
	// After the restart, medians over the runs that measured them.
	AfterRestart *AfterRestart `json:"after_restart,omitempty"`
}

// AfterRestart is how a case's container fared once it ran on host2: its
// post-copy (lazy strategies) and its page writes' stalls (synthetic).
type AfterRestart struct {
	MemoryCompleteMs float64 `json:"memory_complete_ms"`
	Faults           float64 `json:"faults"`
	FaultMiB         float64 `json:"fault_mib"`      // asked for by faults
	BackgroundMiB    float64 `json:"background_mib"` // sent ahead of them
	Stalls           float64 `json:"stalls"`
	StallP50Ms       float64 `json:"stall_p50_ms"`
	StallP99Ms       float64 `json:"stall_p99_ms"`
	StallMaxMs       float64 `json:"stall_max_ms"`
}

// Run executes the benchmark in the lab and writes the report to cfg.Out.
// progress, if set, gets a line per measured migration.
func Run(ctx context.Context, cfg Config, progress func(string)) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if progress == nil {
		progress = func(string) {}
	}
	r := &runner{cfg: cfg, log: progress}
	var err error
	if r.h1, err = lab.Load(ctx, cfg.Hosts[0]); err != nil {
		return nil, err
	}
	if r.h2, err = lab.Load(ctx, cfg.Hosts[1]); err != nil {
		return nil, err
	}
	for _, h := range []lab.Host{r.h1, r.h2} {
		if err := h.Up(ctx); err != nil {
			return nil, err
		}
	}
	link, err := linkProfile(cfg.Link)
	if err != nil {
		return nil, err
	}
	if err := checkUnshaped(ctx, r.h1, r.h2); err != nil {
		return nil, err
	}
	unshape, err := shape(ctx, link, r.h1, r.h2)
	if err != nil {
		return nil, err
	}
	defer unshape()
	notes, err := precopyStrategies(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	r.cfg = cfg
	tmpfs, unmount, err := mountTmpfsWork(cfg)
	if err != nil {
		return nil, err
	}
	defer unmount()
	r.tmpfsWork = tmpfs
	if slices.Contains(cfg.Strategies, PodmanArchive) {
		if err := r.podmanSetup(ctx); err != nil {
			return nil, err
		}
	}
	if r.dst, err = lab.StartDestination(r.h2, cfg.Bin); err != nil {
		return nil, err
	}
	defer r.dst.Stop()
	rep := &Report{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(), Hosts: hostPair(ctx, r.h1, r.h2), Link: link, Config: cfg, Notes: notes}
	add := func(res Result) {
		rep.Results = append(rep.Results, res)
		// Written after every case, so an interrupted run keeps its figures.
		rep.Summary = summarize(rep.Results)
		if err := rep.Write(cfg.Out); err != nil {
			progress("writing the report: " + err.Error())
		}
		status := res.Check
		if res.Error != "" {
			status = "ERROR " + firstLine(res.Error)
		}
		progress(fmt.Sprintf("%-9s %-17s %5d MiB dirty %5d rep %d: freeze %8.1f ms (app %8.1f ms) total %8.1f ms  %s",
			res.Workload, res.Strategy, res.MemMiB, res.DirtyRate, res.Rep, res.FreezeAgentMs, res.FreezeAppMs, res.TotalMs, status))
	}
	if err := r.measureAll(ctx, add); err != nil {
		return rep, err
	}
	rep.Summary = summarize(rep.Results)
	return rep, rep.Write(cfg.Out)
}

// measureAll runs every case, the real application first: the long
// synthetic cases at the end are the likeliest to be cut short.
func (r *runner) measureAll(ctx context.Context, add func(Result)) error {
	cfg := r.cfg
	if cfg.Redis {
		for rp := 1; rp <= cfg.Reps; rp++ {
			for _, s := range cfg.Strategies {
				if s == PodmanArchive {
					continue // the synthetic workload only
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				add(r.redis(ctx, s, rp, false))
				if cfg.RedisWrites {
					add(r.redis(ctx, s, rp, true))
				}
			}
		}
	}
	for _, mib := range cfg.SizesMiB {
		for _, dirty := range cfg.DirtyRates {
			for rp := 1; rp <= cfg.Reps; rp++ {
				for _, s := range cfg.Strategies {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					add(r.synthetic(ctx, s, mib, dirty, rp))
				}
			}
		}
	}
	return nil
}

// precopyStrategies adds the pre-copy strategies where this host's kernel
// tracks dirty memory, refuses them where it cannot, and says what it did.
func precopyStrategies(ctx context.Context, cfg *Config) ([]string, error) {
	caps, err := criu.Probe(ctx, "")
	if err != nil {
		return nil, err
	}
	asked := slices.ContainsFunc(cfg.Strategies, func(s string) bool { return slices.Contains(PrecopyStrategies, s) })
	switch {
	case caps.MemTrack && cfg.AddPrecopy:
		for _, s := range PrecopyStrategies {
			if !slices.Contains(cfg.Strategies, s) {
				cfg.Strategies = append(cfg.Strategies, s)
			}
		}
		return nil, nil
	case caps.MemTrack:
		return nil, nil
	case asked:
		return nil, errors.New("bench: pre-copy strategies need a kernel that tracks dirty memory (soft-dirty); this one does not (criu check --feature mem_dirty_track)")
	}
	return []string{"No pre-copy or hybrid rows: this host's kernel cannot track dirty memory (no soft-dirty: criu check --feature mem_dirty_track fails). " +
		"make test-vm measures them in a VM with a kernel that can."}, nil
}

// Load reads a report.json written by Run, recomputing its summary, so a
// report can be rendered again (Write) without measuring anew.
func Load(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("bench: %s: %w", path, err)
	}
	if len(rep.Results) == 0 {
		return nil, fmt.Errorf("bench: %s holds no results", path)
	}
	rep.Summary = summarize(rep.Results)
	return &rep, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// hostPair names the source and destination with their Docker versions.
func hostPair(ctx context.Context, h1, h2 lab.Host) string {
	name := func(h lab.Host) string {
		v, err := h.Docker(ctx, "version", "-f", "{{.Server.Version}}")
		if err != nil {
			return h.Name
		}
		return fmt.Sprintf("%s (Docker %s)", h.Name, strings.TrimSpace(v))
	}
	return name(h1) + " → " + name(h2)
}

func machine() string {
	host, _ := os.Hostname()
	var uname string
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		uname = strings.TrimSpace(string(data))
	}
	return fmt.Sprintf("%s, Linux %s, %d CPUs, %s", host, uname, runtime.NumCPU(), runtime.GOARCH)
}

func jsonInto(data []byte, v any) error { return json.Unmarshal(data, v) }

type caseKey struct {
	workload, strategy string
	mem, dirty         int
}

// summarize groups results by case, keeping the order cases first appeared.
func summarize(results []Result) []Summary {
	groups := map[caseKey][]Result{}
	var order []caseKey
	for _, r := range results {
		k := caseKey{r.Workload, r.Strategy, r.MemMiB, r.DirtyRate}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	var out []Summary
	for _, k := range order {
		out = append(out, summarizeCase(k, groups[k]))
	}
	for i := range out {
		out[i].DockerRatio = ratioTo(out, out[i], DockerCheckpoint)
		out[i].PodmanRatio = ratioTo(out, out[i], PodmanArchive)
		if out[i].Strategy == StopAndCopy && out[i].FreezeAgentMedMs > 0 {
			out[i].LocalDumpMs = stepOf(out, caseKey{out[i].Workload, StopAndCopyLocal, out[i].MemMiB, out[i].DirtyRate}, "source/dump")
			if out[i].LocalDumpMs > 0 {
				out[i].OverLocalDump = out[i].FreezeAgentMedMs / out[i].LocalDumpMs
			}
		}
	}
	return out
}

// stepOf is the median of step in case k's summary, 0 if there is none.
func stepOf(sums []Summary, k caseKey, step string) float64 {
	for _, s := range sums {
		if (caseKey{s.Workload, s.Strategy, s.MemMiB, s.DirtyRate}) != k {
			continue
		}
		for _, st := range s.FreezeSteps {
			if st.Step == step {
				return st.Ms
			}
		}
	}
	return 0
}

// ratioTo is how many times shorter s's median freeze is than baseline's
// in the same case (0: either is missing).
func ratioTo(sums []Summary, s Summary, baseline string) float64 {
	if s.Strategy == baseline || s.FreezeAgentMedMs <= 0 {
		return 0
	}
	base := caseKey{s.Workload, baseline, s.MemMiB, s.DirtyRate}
	for _, b := range sums {
		if (caseKey{b.Workload, b.Strategy, b.MemMiB, b.DirtyRate}) == base && b.FreezeAgentMedMs > 0 {
			return b.FreezeAgentMedMs / s.FreezeAgentMedMs
		}
	}
	return 0
}

func summarizeCase(k caseKey, rs []Result) Summary {
	s := Summary{Workload: k.workload, Strategy: k.strategy, MemMiB: k.mem, DirtyRate: k.dirty, Runs: len(rs)}
	var agent, app, total, cpu []float64
	var wire []int64
	for _, r := range rs {
		if r.Error != "" || r.Check != "ok" {
			s.Failed++
			continue
		}
		agent = append(agent, r.FreezeAgentMs)
		app = append(app, r.FreezeAppMs)
		total = append(total, r.TotalMs)
		cpu = append(cpu, r.CPUSourceMs+r.CPUDestMs)
		wire = append(wire, r.BytesWire)
	}
	if len(agent) == 0 {
		return s
	}
	s.FreezeAgentMinMs, s.FreezeAgentMedMs = slices.Min(agent), median(agent)
	s.FreezeAppMinMs, s.FreezeAppMedMs = slices.Min(app), median(app)
	s.TotalMedMs, s.CPUMedMs = median(total), median(cpu)
	slices.Sort(wire)
	s.BytesWireMed = wire[len(wire)/2]
	s.FreezeSteps = medianSteps(rs)
	s.AfterRestart = afterRestart(rs)
	return s
}

// afterRestart is the median of each post-copy and stall figure over the
// successful runs that have it, nil if none has.
func afterRestart(rs []Result) *AfterRestart {
	var mem, faults, faultMiB, bgMiB, stalls, p50, p99, worst []float64
	for _, r := range rs {
		if r.Error != "" || r.Check != "ok" {
			continue
		}
		if r.MemoryCompleteMs > 0 {
			mem = append(mem, r.MemoryCompleteMs)
		}
		if pc := r.PostCopy; pc != nil {
			page := float64(os.Getpagesize()) / (1 << 20)
			faults = append(faults, float64(pc.Faults))
			faultMiB, bgMiB = append(faultMiB, float64(pc.FaultPages)*page), append(bgMiB, float64(pc.BackgroundPages)*page)
		}
		if st := r.Stalls; st != nil {
			stalls = append(stalls, float64(st.Count))
			p50, p99, worst = append(p50, st.P50Ms), append(p99, st.P99Ms), append(worst, st.MaxMs)
		}
	}
	if len(mem)+len(faults)+len(stalls) == 0 {
		return nil
	}
	med := func(v []float64) float64 {
		if len(v) == 0 {
			return 0
		}
		return median(v)
	}
	return &AfterRestart{MemoryCompleteMs: med(mem), Faults: med(faults), FaultMiB: med(faultMiB), BackgroundMiB: med(bgMiB),
		Stalls: med(stalls), StallP50Ms: med(p50), StallP99Ms: med(p99), StallMaxMs: med(worst)}
}

// medianSteps is each freeze step's median over the successful runs, in
// the order the steps first appeared.
func medianSteps(rs []Result) []StepMs {
	var order []string
	values := map[string][]float64{}
	for _, r := range rs {
		if r.Error != "" || r.Check != "ok" {
			continue
		}
		for _, st := range r.FreezeSteps {
			if _, ok := values[st.Step]; !ok {
				order = append(order, st.Step)
			}
			values[st.Step] = append(values[st.Step], st.Ms)
		}
	}
	var out []StepMs
	for _, name := range order {
		out = append(out, StepMs{Step: name, Ms: median(values[name])})
	}
	return out
}

func median(v []float64) float64 {
	c := slices.Clone(v)
	sort.Float64s(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

// Write stores report.json, report.md and the plots in dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(r.Markdown()), 0o644); err != nil {
		return err
	}
	return r.Plots(dir)
}

// Markdown renders the summary as a table.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# dockmove freeze-time benchmark\n\n%s — %s\n\n", r.Date, r.Machine)
	if r.Hosts != "" {
		fmt.Fprintf(&b, "Hosts: %s.\n\n", r.Hosts)
	}
	if r.Link != nil {
		fmt.Fprintf(&b, "Link: each host's eth0 shaped to %s (tc tbf; rate only: this kernel has no netem to add delay).\n\n", r.Link.Name)
	} else if r.Hosts != "" {
		b.WriteString("Link: the lab's veth pairs and bridge, not shaped.\n\n")
	}
	fmt.Fprintf(&b, "Freeze (agents): frozen on the source → running on the destination (Docker: `checkpoint create` → `start --checkpoint` returned, one host).\n")
	fmt.Fprintf(&b, "Freeze (app): longest heartbeat gap seen by a client outside the container (redis: slowest request).\n")
	fmt.Fprintf(&b, "× Docker: Docker's median freeze divided by this one. Min / median over %d repetitions.\n\n", r.Config.Reps)
	podman := slices.ContainsFunc(r.Summary, func(s Summary) bool { return s.Strategy == PodmanArchive })
	if podman {
		b.WriteString("× Podman: the same against Podman's archive migration (checkpoint --export, the archive copied over the link, restore --import; its containers have no network, so no client sees them: its freeze is the commands' time, the copy included; wire: the archive).\n\n")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "%s\n\n", n)
	}
	b.WriteString("| workload | strategy | memory | dirty pages/s | freeze agents min / median (ms) | freeze app min / median (ms) | total median (ms) | wire (MiB) | agents CPU (ms) | × Docker |")
	if podman {
		b.WriteString(" × Podman |")
	}
	b.WriteString(" failed |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	if podman {
		b.WriteString("---:|")
	}
	b.WriteString("---:|\n")
	times := func(v float64) string {
		if v <= 0 {
			return "–"
		}
		return fmt.Sprintf("%.1f×", v)
	}
	for _, s := range r.Summary {
		cpu, wire, app := "–", "–", fmt.Sprintf("%.0f / %.0f", s.FreezeAppMinMs, s.FreezeAppMedMs)
		switch s.Strategy {
		case DockerCheckpoint:
			// Docker's own CPU (dockerd, containerd, runc, CRIU) and local
			// disk traffic are not measured.
		case PodmanArchive:
			wire, app = fmt.Sprintf("%.1f", float64(s.BytesWireMed)/(1<<20)), "–"
		default:
			cpu, wire = fmt.Sprintf("%.0f", s.CPUMedMs), fmt.Sprintf("%.1f", float64(s.BytesWireMed)/(1<<20))
		}
		fmt.Fprintf(&b, "| %s | %s | %d MiB | %d | %.0f / %.0f | %s | %.0f | %s | %s | %s |",
			s.Workload, s.Strategy, s.MemMiB, s.DirtyRate, s.FreezeAgentMinMs, s.FreezeAgentMedMs, app,
			s.TotalMedMs, wire, cpu, times(s.DockerRatio))
		if podman {
			fmt.Fprintf(&b, " %s |", times(s.PodmanRatio))
		}
		fmt.Fprintf(&b, " %d/%d |\n", s.Failed, s.Runs)
	}
	r.stepsTable(&b)
	r.localDumpTable(&b)
	r.afterRestartTable(&b)
	first := true
	for _, res := range r.Results {
		if res.Error == "" && res.Check == "ok" {
			continue
		}
		if first {
			b.WriteString("\n## Failed runs\n\n")
			first = false
		}
		why := firstLine(res.Error)
		if why == "" {
			why = "check: " + res.Check
		} else if res.Check != "" {
			why += " (afterwards the application's check: " + res.Check + ")"
		}
		fmt.Fprintf(&b, "- %s %s %d MiB dirty %d rep %d: %s\n", res.Workload, res.Strategy, res.MemMiB, res.DirtyRate, res.Rep, why)
	}
	return b.String()
}

// localDumpTable compares stop-and-copy's freeze with CRIU alone dumping
// the same container to local tmpfs in the same run.
func (r *Report) localDumpTable(b *strings.Builder) {
	first := true
	for _, s := range r.Summary {
		if s.OverLocalDump == 0 {
			continue
		}
		if first {
			b.WriteString("\n## Stop-and-copy against CRIU alone (median ms)\n\n" +
				"CRIU's dump of the same container to local tmpfs: the dump step of stop-and-copy:local-pages, whose work directory is a tmpfs. Target: the freeze at most 1.3x that.\n\n" +
				"| workload | memory | dirty pages/s | stop-and-copy freeze | CRIU dump to tmpfs | ratio |\n|---|---:|---:|---:|---:|---:|\n")
			first = false
		}
		fmt.Fprintf(b, "| %s | %d MiB | %d | %.0f | %.0f | %.2f× |\n", s.Workload, s.MemMiB, s.DirtyRate, s.FreezeAgentMedMs, s.LocalDumpMs, s.OverLocalDump)
	}
}

// afterRestartTable renders how each case's container fared on host2:
// post-copy's figures and the synthetic workload's page write stalls.
func (r *Report) afterRestartTable(b *strings.Builder) {
	header := false
	for _, s := range r.Summary {
		a := s.AfterRestart
		if a == nil {
			continue
		}
		if !header {
			b.WriteString("\n## After the restart (median)\n\n")
			b.WriteString("Memory complete: from the restart on host2 to the last page (post-copy). Faults: page faults host2's lazy-pages daemon served; " +
				"MiB by faults / ahead of them: pages it asked for on a fault and in the background; drain: background MiB over the memory-complete time. " +
				"Stalls: the synthetic workload's page writes that took 50 µs or more, from just before the migration to just after it " +
				"(a write caught by the freeze counts the freeze).\n\n")
			b.WriteString("| workload | strategy | memory | dirty pages/s | memory complete (ms) | faults | MiB by faults / ahead | drain (MiB/s) | stalls | stall p50 / p99 / max (ms) |\n")
			b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
			header = true
		}
		mem, faults, mib, drain, stalls := "–", "–", "–", "–", "–"
		if a.MemoryCompleteMs > 0 {
			mem = fmt.Sprintf("%.0f", a.MemoryCompleteMs)
		}
		if a.Faults > 0 || a.BackgroundMiB > 0 {
			faults, mib = fmt.Sprintf("%.0f", a.Faults), fmt.Sprintf("%.1f / %.1f", a.FaultMiB, a.BackgroundMiB)
			if a.MemoryCompleteMs > 0 {
				drain = fmt.Sprintf("%.0f", a.BackgroundMiB/(a.MemoryCompleteMs/1000))
			}
		}
		if s.Workload == "synthetic" {
			stalls = fmt.Sprintf("%.0f | %.2f / %.2f / %.2f", a.Stalls, a.StallP50Ms, a.StallP99Ms, a.StallMaxMs)
		} else {
			stalls += " | –"
		}
		fmt.Fprintf(b, "| %s | %s | %d MiB | %d | %s | %s | %s | %s | %s |\n", s.Workload, s.Strategy, s.MemMiB, s.DirtyRate, mem, faults, mib, drain, stalls)
	}
}

// stepsTable renders where each case's freeze went: a column per step
// (the union of the cases' steps, in the order they appear), medians in
// ms. Docker's checkpoint has no breakdown and no row.
func (r *Report) stepsTable(b *strings.Builder) {
	var cols []string
	seen := map[string]bool{}
	for _, s := range r.Summary {
		for _, st := range s.FreezeSteps {
			if !seen[st.Step] {
				seen[st.Step] = true
				cols = append(cols, st.Step)
			}
		}
	}
	if len(cols) == 0 {
		return
	}
	b.WriteString("\n## Where the freeze went (median ms)\n\n")
	b.WriteString("Source: CRIU's dump, shipping its images; destination: its steps up to the copy running; link: the rest (last bytes, two messages).\n\n")
	b.WriteString("| workload | strategy | memory | dirty pages/s | " + strings.Join(cols, " | ") + " |\n")
	b.WriteString("|---|---|---:|---:|" + strings.Repeat("---:|", len(cols)) + "\n")
	for _, s := range r.Summary {
		if len(s.FreezeSteps) == 0 {
			continue
		}
		cell := map[string]float64{}
		for _, st := range s.FreezeSteps {
			cell[st.Step] = st.Ms
		}
		fmt.Fprintf(b, "| %s | %s | %d MiB | %d |", s.Workload, s.Strategy, s.MemMiB, s.DirtyRate)
		for _, c := range cols {
			if v, ok := cell[c]; ok {
				fmt.Fprintf(b, " %.0f |", v)
			} else {
				b.WriteString(" – |")
			}
		}
		b.WriteString("\n")
	}
}
