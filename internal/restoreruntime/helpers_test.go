package restoreruntime

import (
	"os/exec"
	"strconv"
	"testing"
)

// startSleeper starts a child to stand in for dockerd's PID (SIGHUP ends
// it, which is fine: the test only needs a PID that is not a real daemon).
func startSleeper(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return strconv.Itoa(cmd.Process.Pid)
}
