package netrewire

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab/labtest"
)

// TestSilenceTakesANamespaceOffTheNetwork: every interface of another
// network namespace goes down, the loopback stays up.
func TestSilenceTakesANamespaceOffTheNetwork(t *testing.T) {
	labtest.RequireRoot(t)
	other := exec.Command("unshare", "--net", "sh", "-c",
		"ip link add a0 type veth peer name b0 && ip link set a0 up && ip link set b0 up && ip link set lo up && exec sleep 60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	pid := fmt.Sprint(other.Process.Pid)
	up := func() []string {
		out, _ := exec.Command("nsenter", "--net=/proc/"+pid+"/ns/net", "ip", "-o", "link", "show", "up").CombinedOutput()
		var names []string
		for line := range strings.Lines(string(out)) {
			if f := strings.Fields(line); len(f) > 1 {
				names = append(names, strings.TrimSuffix(strings.Split(f[1], "@")[0], ":"))
			}
		}
		return names
	}
	// Until unshare has made the namespace, /proc/PID/ns/net is this one:
	// wait for a namespace of its own with its three links up (Silence
	// of this namespace would take the host's links down).
	own, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	ready := func() bool {
		ns, err := os.Readlink("/proc/" + pid + "/ns/net")
		links := up()
		return err == nil && ns != own && slices.Contains(links, "a0") && slices.Contains(links, "b0") && slices.Contains(links, "lo")
	}
	for deadline := time.Now().Add(10 * time.Second); !ready(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the namespace's links never came up: %v", up())
		}
	}
	if err := Silence(other.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if got := up(); len(got) != 1 || got[0] != "lo" {
		t.Fatalf("links up after Silence: %v, want only lo", got)
	}
}
