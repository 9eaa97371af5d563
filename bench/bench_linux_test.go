package bench

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/lab/labtest"
	"github.com/dockmove/dockmove/protocol"
)

func TestMedianAndSummary(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Fatalf("median odd = %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Fatalf("median even = %v", m)
	}
	rs := []Result{
		{Workload: "synthetic", Strategy: DockerCheckpoint, MemMiB: 64, FreezeAgentMs: 3000, Check: "ok"},
		{Workload: "synthetic", Strategy: Lazy, MemMiB: 64, FreezeAgentMs: 500, Check: "ok"},
		{Workload: "synthetic", Strategy: Lazy, MemMiB: 64, FreezeAgentMs: 700, Check: "ok"},
		{Workload: "synthetic", Strategy: Lazy, MemMiB: 64, Error: "boom"},
	}
	s := summarize(rs)
	if len(s) != 2 || s[1].Runs != 3 || s[1].Failed != 1 || s[1].FreezeAgentMedMs != 600 || s[1].DockerRatio != 5 {
		t.Fatalf("summary %+v", s)
	}
}

func TestPodmanRatioWithFakeResults(t *testing.T) {
	rs := []Result{
		{Workload: "synthetic", Strategy: Lazy, MemMiB: 64, FreezeAgentMs: 500, FreezeAppMs: 450, Check: "ok"},
		{Workload: "synthetic", Strategy: PodmanArchive, MemMiB: 64, FreezeAgentMs: 5000, BytesWire: 70 << 20, Check: "ok"},
		{Workload: "synthetic", Strategy: DockerCheckpoint, MemMiB: 64, FreezeAgentMs: 10000, FreezeAppMs: 10000, Check: "ok"},
	}
	r := Report{Summary: summarize(rs), Config: Config{Reps: 1}}
	if s := r.Summary[0]; s.PodmanRatio != 10 || s.DockerRatio != 20 {
		t.Fatalf("lazy: %+v", s)
	}
	if s := r.Summary[1]; s.PodmanRatio != 0 || s.DockerRatio != 2 {
		t.Fatalf("podman: %+v", s)
	}
	md := r.Markdown()
	for _, want := range []string{"| × Docker | × Podman | failed |", "| synthetic | lazy | 64 MiB | 0 | 500 / 500 | 450 / 450 |", "| 20.0× | 10.0× | 0/1 |",
		"| synthetic | podman-archive | 64 MiB | 0 | 5000 / 5000 | – | 0 | 70.0 | – | 2.0× | – | 0/1 |"} {
		if !strings.Contains(md, want) {
			t.Fatalf("no %q in:\n%s", want, md)
		}
	}
}

func TestStopAndCopyOverLocalDumpWithFakeResults(t *testing.T) {
	rs := []Result{
		{Workload: "synthetic", Strategy: StopAndCopy, MemMiB: 1024, FreezeAgentMs: 3000, Check: "ok"},
		{Workload: "synthetic", Strategy: StopAndCopyLocal, MemMiB: 1024, FreezeAgentMs: 5000, Check: "ok",
			FreezeSteps: []StepMs{{"source/dump", 2000}, {"source/ship", 2500}}},
		{Workload: "synthetic", Strategy: StopAndCopy, MemMiB: 64, FreezeAgentMs: 900, Check: "ok"},
	}
	r := Report{Summary: summarize(rs), Config: Config{Reps: 1}}
	if s := r.Summary[0]; s.LocalDumpMs != 2000 || s.OverLocalDump != 1.5 {
		t.Fatalf("1 GiB: %+v", s)
	}
	if s := r.Summary[2]; s.OverLocalDump != 0 {
		t.Fatalf("64 MiB has no local dump to compare with: %+v", s)
	}
	if md := r.Markdown(); !strings.Contains(md, "| synthetic | 1024 MiB | 0 | 3000 | 2000 | 1.50× |") || strings.Contains(md, "| synthetic | 64 MiB | 0 | 900 |") {
		t.Fatalf("local dump table:\n%s", md)
	}
}

func TestFreezeStepsTableWithFakeResults(t *testing.T) {
	steps := func(dump, restore float64) []StepMs {
		return []StepMs{{"source/dump", dump}, {"destination/runc-restore", restore}, {"link", 1}}
	}
	rs := []Result{
		{Workload: "synthetic", Strategy: DockerCheckpoint, MemMiB: 64, FreezeAgentMs: 3000, Check: "ok"},
		{Workload: "synthetic", Strategy: Lazy, MemMiB: 64, FreezeAgentMs: 500, Check: "ok", FreezeSteps: steps(100, 300)},
		{Workload: "synthetic", Strategy: Lazy, MemMiB: 64, FreezeAgentMs: 700, Check: "ok", FreezeSteps: steps(200, 500)},
		{Workload: "synthetic", Strategy: Lazy, MemMiB: 64, Error: "boom", FreezeSteps: steps(9000, 9000)},
	}
	r := Report{Summary: summarize(rs)}
	if got := r.Summary[1].FreezeSteps; len(got) != 3 || got[0].Ms != 150 || got[1].Ms != 400 {
		t.Fatalf("median steps %+v", got)
	}
	md := r.Markdown()
	if !strings.Contains(md, "| source/dump | destination/runc-restore | link |") || !strings.Contains(md, "| synthetic | lazy | 64 MiB | 0 | 150 | 400 | 1 |") {
		t.Fatalf("steps table:\n%s", md)
	}
}

func TestAfterRestartTableWithFakeResults(t *testing.T) {
	pc := func(faults, faultPages, bg int64) *protocol.PostCopyStats {
		return &protocol.PostCopyStats{Faults: faults, FaultPages: faultPages, BackgroundPages: bg}
	}
	rs := []Result{
		{Workload: "synthetic", Strategy: StopAndCopy, MemMiB: 64, Check: "ok", Stalls: &StallsMs{Writes: 900, Count: 1, P50Ms: 800, P99Ms: 800, MaxMs: 800}},
		{Workload: "synthetic", Strategy: Lazy, MemMiB: 64, Check: "ok", MemoryCompleteMs: 500, PostCopy: pc(100, 90, 16384-90),
			Stalls: &StallsMs{Writes: 1000, Count: 100, P50Ms: 1, P99Ms: 4, MaxMs: 900}},
		{Workload: "synthetic", Strategy: Lazy, MemMiB: 64, Check: "ok", MemoryCompleteMs: 700, PostCopy: pc(300, 290, 16384-290),
			Stalls: &StallsMs{Writes: 1000, Count: 300, P50Ms: 3, P99Ms: 6, MaxMs: 1100}},
		{Workload: "synthetic", Strategy: Lazy, MemMiB: 64, Error: "boom", MemoryCompleteMs: 9000},
		{Workload: "redis", Strategy: Lazy, MemMiB: 64, Check: "ok", MemoryCompleteMs: 400, PostCopy: pc(10, 10, 16374)},
	}
	r := Report{Summary: summarize(rs)}
	a := r.Summary[1].AfterRestart
	if a == nil || a.MemoryCompleteMs != 600 || a.Faults != 200 || a.StallP99Ms != 5 || a.StallMaxMs != 1000 {
		t.Fatalf("after restart %+v", a)
	}
	md := r.Markdown()
	for _, row := range []string{
		"| synthetic | stop-and-copy | 64 MiB | 0 | – | – | – | – | 1 | 800.00 / 800.00 / 800.00 |",
		"| synthetic | lazy | 64 MiB | 0 | 600 | 200 | 0.7 / 63.3 | 105 | 200 | 2.00 / 5.00 / 1000.00 |",
		"| redis | lazy | 64 MiB | 0 | 400 | 10 | 0.0 / 64.0 | 160 | – | – |",
	} {
		if !strings.Contains(md, row) {
			t.Errorf("no row %q in:\n%s", row, md)
		}
	}
}

// TestBenchSmoke runs the benchmark command's whole path on a tiny
// configuration against the real lab: every strategy, the Docker baseline
// and redis, with the report written. It checks that the figures exist and
// that every application verified its state, not how fast anything was.
func TestBenchSmoke(t *testing.T) {
	h1, _ := labtest.Require(t)
	labtest.RequireBinary(t, "criu")
	out, err := h1.Docker(context.Background(), "image", "inspect", "-f", "{{.Id}}", lab.RedisImage)
	labtest.SkipUnless(t, err == nil && out != "", lab.RedisImage+" (run: make lab-up)")
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "./cmd/migrate-src", "./cmd/migrate-dst")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	cfg := DefaultConfig()
	cfg.SizesMiB, cfg.DirtyRates, cfg.Reps, cfg.RedisMiB = []int{16}, []int{100}, 1, 8
	cfg.Bin, cfg.Out = bin, t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg, func(line string) { t.Log(line) })
	if err != nil {
		t.Fatal(err)
	}
	// synthetic, and redis read and written (not Podman's)
	if want := len(cfg.Strategies) + 2*(len(cfg.Strategies)-1); len(rep.Results) != want {
		t.Fatalf("%d results, want %d", len(rep.Results), want)
	}
	for _, r := range rep.Results {
		// No client watches Podman's containers (they have no network).
		watched := r.Strategy != PodmanArchive
		if r.Error != "" || r.Check != "ok" || r.FreezeAgentMs <= 0 || (r.FreezeAppMs <= 0) == watched {
			t.Errorf("%s %s: %+v", r.Workload, r.Strategy, r)
		}
		// Every migration says where its freeze went, to the ms.
		var sum float64
		for _, st := range r.FreezeSteps {
			sum += st.Ms
		}
		if ours(r.Strategy) && (len(r.FreezeSteps) == 0 || math.Abs(sum-r.FreezeAgentMs) > 1) {
			t.Errorf("%s %s: freeze steps %+v add up to %.1f ms, the freeze was %.1f ms", r.Workload, r.Strategy, r.FreezeSteps, sum, r.FreezeAgentMs)
		}
	}
	for _, s := range rep.Summary {
		if s.Strategy != DockerCheckpoint && s.DockerRatio <= 0 {
			t.Errorf("no ratio against Docker for %s %s", s.Workload, s.Strategy)
		}
		if s.Workload == "synthetic" && ours(s.Strategy) && s.PodmanRatio <= 0 {
			t.Errorf("no ratio against Podman for %s %s", s.Workload, s.Strategy)
		}
	}
	// Post-copy says what host2's daemon did; the synthetic workload how
	// long its writes waited.
	for _, r := range rep.Results {
		if r.Strategy == Lazy && (r.PostCopy == nil || r.PostCopy.BackgroundPages+r.PostCopy.FaultPages == 0) {
			t.Errorf("%s lazy: post-copy figures %+v", r.Workload, r.PostCopy)
		}
		if r.Workload == "synthetic" && ours(r.Strategy) && (r.Stalls == nil || r.Stalls.Writes == 0) {
			t.Errorf("synthetic %s: stalls %+v", r.Strategy, r.Stalls)
		}
	}
	for _, f := range []string{"report.json", "report.md", "freeze-agents-dirty100.png", "freeze-app-dirty100.png"} {
		if st, err := os.Stat(filepath.Join(cfg.Out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s missing: %v", f, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(cfg.Out, "report.md"))
	if !strings.Contains(string(md), "| redis | lazy |") || !strings.Contains(string(md), "| redis-writes | lazy |") || !strings.Contains(string(md), "| synthetic | podman-archive |") || !strings.Contains(string(md), "× Podman") ||
		!strings.Contains(string(md), "## Stop-and-copy against CRIU alone") || !strings.Contains(string(md), "## Where the freeze went") || !strings.Contains(string(md), "## After the restart") {
		t.Errorf("markdown lacks the redis rows or the freeze steps:\n%s", md)
	}
}

// ours: a strategy of dockmove's, not a peer's.
func ours(strategy string) bool { return strategy != DockerCheckpoint && strategy != PodmanArchive }

func TestFreezeBreakdownBarsWithFakeSummaries(t *testing.T) {
	sums := []Summary{
		{Workload: "synthetic", Strategy: DockerCheckpoint, MemMiB: 64},
		{Workload: "synthetic", Strategy: Lazy, MemMiB: 64, FreezeSteps: []StepMs{
			{"source/dump", 100}, {"source/ship", 10}, {"destination/prepare", 5}, {"destination/record", 2},
			{"destination/docker-to-runtime", 30}, {"destination/docker-after-runtime", 90},
			{"destination/runc-restore", 80}, {"link", 12}, {"destination/something-new", 7},
		}},
		{Workload: "redis", Strategy: Lazy, MemMiB: 256, FreezeSteps: []StepMs{{"source/dump", 50}}},
		{Workload: "synthetic", Strategy: Lazy, MemMiB: 64, DirtyRate: 2560, FreezeSteps: []StepMs{{"source/dump", 1}}},
	}
	labels, parts := breakdownBars(sums, Lazy, 0)
	if len(labels) != 2 || labels[0] != "64 MiB" || labels[1] != "redis 256 MiB" {
		t.Fatalf("labels %q", labels)
	}
	want := []float64{100, 10, 7, 120, 80, 12, 7} // dump, ship, destination, Docker, restore, link, other
	for g, w := range want {
		if parts[g][0] != w {
			t.Fatalf("group %s: %v, want %v", breakdownGroups[g].name, parts[g][0], w)
		}
	}
	if parts[0][1] != 50 {
		t.Fatalf("redis dump %v", parts[0][1])
	}
	if labels, _ := breakdownBars(sums, DockerCheckpoint, 0); len(labels) != 0 {
		t.Fatalf("Docker's freeze has no steps, got bars %q", labels)
	}
}
