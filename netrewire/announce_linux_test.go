package netrewire

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/lab/labtest"
)

// inNetns leaves no thread of the agent in the other namespace, the main
// thread included: Go parks a main thread whose locked goroutine exits,
// and /proc/self/net is that thread's. With one P, the goroutines run on
// the main thread while the test waits (before the fix, the main thread
// was left in the other namespace).
func TestInNetnsLeavesTheMainThreadHome(t *testing.T) {
	labtest.RequireRoot(t)
	other := exec.Command("unshare", "--net", "sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	home, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	// unshare enters its namespace, then runs sleep.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", other.Process.Pid)); ns != "" && ns != home {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("unshare --net made no network namespace within 10 s")
		}
	}
	for range 20 {
		if err := inNetns(other.Process.Pid, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if now, _ := os.Readlink("/proc/self/ns/net"); now != home {
		t.Fatalf("the main thread is in %s, was in %s", now, home)
	}
}
