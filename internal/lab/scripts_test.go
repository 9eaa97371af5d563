package lab

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// earlyExit matches a pipeline stage that may stop reading before its
// writer is done: grep -q (or -m), head, or awk that exits. Under
// `set -o pipefail` the writer then dies of SIGPIPE now and then and the
// whole pipeline fails at random; this made a fresh machine's lab-up add an
// address twice ("Address already assigned").
var earlyExit = regexp.MustCompile(`\|\s*(grep\s+(-\w*[qm]\w*\b)|head\b|awk\b[^|]*\bexit\b)`)

// TestScriptsHaveNoEarlyExitPipes reads every shell script of the project
// for a pipe into a reader that can exit early under pipefail.
func TestScriptsHaveNoEarlyExitPipes(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	scripts, _ := filepath.Glob(filepath.Join(root, "scripts", "*.sh"))
	scripts = append(scripts, filepath.Join(root, ".ci", "run"))
	if len(scripts) < 5 {
		t.Fatalf("found only %v", scripts)
	}
	for _, path := range scripts {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "pipefail") {
			continue
		}
		for i, line := range strings.Split(string(data), "\n") {
			if code, _, _ := strings.Cut(line, " #"); earlyExit.MatchString(code) && !strings.HasPrefix(strings.TrimSpace(line), "#") {
				t.Errorf("%s:%d: a pipe into a reader that may exit early, under pipefail: %s", filepath.Base(path), i+1, strings.TrimSpace(line))
			}
		}
	}
}

// TestEarlyExitPattern checks the detector on lines it must and must not flag.
func TestEarlyExitPattern(t *testing.T) {
	for line, want := range map[string]bool{
		`ip addr show | grep -q " 10.0.0.1/24 "`:   true,
		`x=$(cmd | grep -m1 foo)`:                  true,
		`x=$(cmd | head -n1)`:                      true,
		`x=$(cmd | awk '/a/{print $2; exit}')`:     true,
		`grep -qF " $want " <<<"$out"`:             false,
		`x=$(cmd | awk '/a/ && !f {print; f=1}')`:  false,
		`x=$(cmd | sort -V | sed -n 1p)`:           false,
		`uri=$(awk '/^URIs:/ {print $2; exit}' f)`: false,
		`dpkg-query -W p || echo "$p"`:             false,
		`grep -q '^VMTEST-EXIT 0' "$LOG"`:          false,
	} {
		if got := earlyExit.MatchString(line); got != want {
			t.Errorf("%s: flagged %v, want %v", line, got, want)
		}
	}
}

// TestGoAgreesWithLabScript: scripts/lab.sh is the lab's single source of
// settings; what the Go side keeps as constants must be what it prints.
func TestGoAgreesWithLabScript(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"host1", "host3"} {
		out, err := exec.Command("bash", filepath.Join(root, "scripts", "lab.sh"), "env", name).Output()
		if err != nil {
			t.Fatalf("lab.sh env %s: %v", name, err)
		}
		env := map[string]string{}
		for _, line := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				env[k] = v
			}
		}
		h := Host{Name: name, Config: env["LAB_CONFIG"]}
		for k, want := range map[string]string{
			"LAB_TLS_DIR":    filepath.Join(TLSDir, name),
			"LAB_AGENT_PORT": AgentPort,
			"LAB_WORK_DIR":   h.WorkDir(),
		} {
			if env[k] != want {
				t.Errorf("%s: lab.sh says %s=%q, internal/lab %q", name, k, env[k], want)
			}
		}
	}
}
