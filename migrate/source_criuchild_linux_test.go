package migrate

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// criuChild picks this dump's CRIU among several (a drain runs dumps at
// once): the child named criu that holds the dump's images open, not the
// first child named criu (stand-ins: copies of sleep called criu, each
// holding a file of its own directory open).
func TestCRIUChildIsTheOneHoldingTheImagesWithFakeCRIUs(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "criu")
	data, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	var dirs []string
	var pids []int
	for range 2 {
		dir := t.TempDir()
		f, err := os.Create(filepath.Join(dir, "dump.log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "60")
		cmd.ExtraFiles = []*os.File{f}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		f.Close()
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		dirs, pids = append(dirs, dir), append(pids, cmd.Process.Pid)
	}
	for i, dir := range dirs {
		var got int
		for deadline := time.Now().Add(10 * time.Second); got == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			got = criuChild(dir) // the child may not have exec'd yet
		}
		if got != pids[i] {
			t.Fatalf("criuChild(dump %d) = %d, want %d (children %v)", i, got, pids[i], pids)
		}
	}
	if got := criuChild(t.TempDir()); got != 0 {
		t.Fatalf("criuChild of a directory no CRIU holds = %d", got)
	}
}
