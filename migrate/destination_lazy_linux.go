package migrate

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// killRestoreIfPagerDies watches, while CRIU restores in workDir, the
// lazy-pages daemon: if it dies before the restore has finished, CRIU's
// restore fails to tell it so, kills its restored tasks and then waits for
// them forever (seen with the daemon killed, and with it dying of a CRIU
// BUG under load), holding the container and the migration until the
// restore timeout. The restore's CRIU is killed instead, so that the
// restore fails at once and the migration rolls back. stop ends the watch.
func (in *incoming) killRestoreIfPagerDies(workDir string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		select {
		case <-in.pages.Done():
		case <-done:
			return
		}
		if in.pages.ExitErr() == nil {
			return // a clean exit: nothing waits on it
		}
		if pids := killCRIUIn(workDir); len(pids) > 0 {
			in.log.Warn("the lazy-pages daemon died during the restore: its CRIU restore was stopped", "criu", pids, "err", in.pages.ExitErr())
		}
	})
	return func() { close(done); wg.Wait() }
}

// killCRIUIn kills the CRIU processes working in dir (their current
// directory) and returns their PIDs.
func killCRIUIn(dir string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var killed []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		proc := filepath.Join("/proc", e.Name())
		comm, err := os.ReadFile(filepath.Join(proc, "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "criu" {
			continue
		}
		if cwd, err := os.Readlink(filepath.Join(proc, "cwd")); err != nil || cwd != dir {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
	}
	return killed
}

// chanClosed says whether c is closed, without waiting.
func chanClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
