//go:build linux

package migrate

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/dockmove/dockmove/internal/cli"
)

// imagesDir is where the final dump goes in the source's work directory,
// next to the pre-copy rounds.
const imagesDir = "images"

// processName makes a command name fit the wire's name pattern.
func processName(comm string) string {
	b := []byte(strings.TrimSpace(comm))
	for i, c := range b {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || (i > 0 && strings.IndexByte("_.+-", c) >= 0)
		if !ok {
			b[i] = '_'
		}
	}
	if len(b) == 0 || b[0] == '_' {
		b = append([]byte("p"), b...)
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

// initOfPIDNamespace reports whether pid is PID 1 in its innermost PID
// namespace.
func initOfPIDNamespace(pid int) bool {
	ids := nsPIDs(pid)
	return len(ids) > 1 && ids[len(ids)-1] == 1
}

// nsPIDs is pid in each PID namespace it is in, outermost first.
func nsPIDs(pid int) []int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			var ids []int
			for _, f := range strings.Fields(rest) {
				n, _ := strconv.Atoi(f)
				ids = append(ids, n)
			}
			return ids
		}
	}
	return nil
}

// treeRSS sums the resident memory of pid and its descendants: what a
// process migration's images will hold.
func treeRSS(pid int) int64 {
	var total int64
	for _, p := range tree(pid) {
		total += rss(p)
	}
	return total
}

// tree lists pid and its descendants.
func tree(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp := parentPID(p); pp > 0 {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	for todo := []int{pid}; len(todo) > 0; {
		p := todo[len(todo)-1]
		todo = append(todo[:len(todo)-1], children[p]...)
		out = append(out, p)
	}
	return out
}

// checkNotStopped refuses, before anything is frozen, a tree in which a
// task is stopped (SIGSTOP, a job stopped in a shell) or traced by a
// debugger: CRIU's dump then waits for it forever, with the container
// frozen.
func checkNotStopped(pid int) error {
	var stopped []string
	for _, p := range tree(pid) {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			f := taskStat(p, tid)
			if len(f) > 0 && (f[0] == "T" || f[0] == "t") {
				comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
				what := map[string]string{"T": "stopped", "t": "held by a debugger"}[f[0]]
				stopped = append(stopped, fmt.Sprintf("%s (pid %d here, %d inside) is %s", strings.TrimSpace(string(comm)), p, nsPID(p), what))
				break
			}
		}
	}
	if len(stopped) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s; CRIU cannot dump a stopped task and would hang with the container frozen: "+
		"resume it (kill -CONT) or end it, then migrate again", ErrCannotMove, strings.Join(stopped, ", "))
}

func taskStat(pid, tid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		return nil
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

// nsPID is pid as its own (innermost) PID namespace numbers it.
func nsPID(pid int) int {
	if ids := nsPIDs(pid); len(ids) > 0 {
		return ids[len(ids)-1]
	}
	return pid
}

func parentPID(pid int) int {
	f := statFields(pid)
	if len(f) < 2 {
		return 0
	}
	pp, _ := strconv.Atoi(f[1])
	return pp
}

// statFields returns /proc/PID/stat's fields after the command name (the
// state first), or nil: the name may hold spaces and parentheses.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// ghostFile is a regular file a task keeps open after it was deleted: CRIU
// copies its content into the images ("ghost file").
type ghostFile struct {
	pid, fd int
	path    string
	size    int64
}

// deletedOpenFiles lists the ghost files of the tree rooted at pid.
func deletedOpenFiles(pid int) []ghostFile {
	var out []ghostFile
	seen := map[[2]uint64]bool{}
	for _, p := range tree(pid) {
		dir := fmt.Sprintf("/proc/%d/fd", p)
		fds, _ := os.ReadDir(dir)
		for _, e := range fds {
			target, err := os.Readlink(filepath.Join(dir, e.Name()))
			if err != nil || !strings.HasSuffix(target, " (deleted)") || !strings.HasPrefix(target, "/") {
				continue
			}
			fi, err := os.Stat(filepath.Join(dir, e.Name()))
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			st, ok := fi.Sys().(*syscall.Stat_t)
			if !ok || seen[[2]uint64{st.Dev, st.Ino}] {
				continue // the same file open twice is copied once
			}
			seen[[2]uint64{st.Dev, st.Ino}] = true
			fd, _ := strconv.Atoi(e.Name())
			out = append(out, ghostFile{pid: p, fd: fd, path: strings.TrimSuffix(target, " (deleted)"), size: fi.Size()})
		}
	}
	return out
}

// ghostBytes is what the tree's ghost files add to the images.
func ghostBytes(pid int) int64 {
	var n int64
	for _, g := range deletedOpenFiles(pid) {
		n = satAdd(n, g.size)
	}
	return n
}

// checkGhosts refuses, before anything is frozen, a tree holding a deleted
// file larger than limit open: CRIU's dump would fail on it with the
// container frozen.
func checkGhosts(pid int, limit int64) error {
	var big []string
	for _, g := range deletedOpenFiles(pid) {
		if g.size > limit {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", g.pid))
			big = append(big, fmt.Sprintf("%s (pid %d here, %d inside) holds deleted file %s open (%s, descriptor %d)",
				strings.TrimSpace(string(comm)), g.pid, nsPID(g.pid), g.path, cli.Size(g.size), g.fd))
		}
	}
	if len(big) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s; a deleted file that is still open moves inside the images, up to %s: raise --ghost-limit, or have the process close it",
		ErrCannotMove, strings.Join(big, "; "), cli.Size(limit))
}

// capSysResource is CAP_SYS_RESOURCE's bit in /proc/PID/status's CapEff.
const capSysResource = 24

// checkLimitsReadable refuses, before anything is frozen, a tree CRIU
// could not dump on this host: stock CRIU reads every process's resource
// limits with prlimit(), which takes CAP_SYS_RESOURCE for a process of
// another user, and a host whose root lacks it (a restricted container or
// VM, as the lab's) fails the dump with "Can't get rlimit 0: Operation not
// permitted". A CRIU that reads them from /proc/PID/limits instead
// (readsProc, asked only when it matters) dumps them anyway. status reads
// /proc/PID/status ("self" for this process).
func checkLimitsReadable(pid int, status func(pid string) (string, error), readsProc func() bool) error {
	self, err := status("self")
	if err != nil || hasCap(self, capSysResource) {
		return nil
	}
	myUID, myGID := statusIDs(self, "Uid:"), statusIDs(self, "Gid:")
	var others []string
	for _, p := range tree(pid) {
		st, err := status(strconv.Itoa(p))
		if err != nil {
			continue // gone
		}
		uids, gids := statusIDs(st, "Uid:"), statusIDs(st, "Gid:")
		if sameIDs(uids, myUID) && sameIDs(gids, myGID) {
			continue
		}
		name, _, _ := strings.Cut(statusField(st, "Name:"), "\n")
		others = append(others, fmt.Sprintf("%s (pid %d here, %d inside, uid %s)", name, p, nsPID(p), strings.Join(uids, "/")))
	}
	if len(others) == 0 || readsProc() {
		return nil
	}
	return fmt.Errorf("%w: %s run as another user, and this host's root lacks CAP_SYS_RESOURCE (a restricted container or VM), "+
		"without which this CRIU may not read their resource limits and the dump would fail (\"Can't get rlimit\"): "+
		"run migrate-src with CAP_SYS_RESOURCE, or use a CRIU that reads them from /proc (scripts/deps.sh builds one: criu check --feature rlimits_proc)",
		ErrCannotMove, strings.Join(others, ", "))
}

// statusField is the value of field (with its colon) in a status file.
func statusField(status, field string) string {
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// statusIDs are the real, effective, saved and file-system IDs of a Uid:
// or Gid: line.
func statusIDs(status, field string) []string { return strings.Fields(statusField(status, field)) }

// sameIDs reports whether a process's real, effective and saved IDs are
// all mine (my real one), as prlimit asks of a caller without the
// capability.
func sameIDs(ids, mine []string) bool {
	if len(ids) < 3 || len(mine) < 1 {
		return false
	}
	return ids[0] == mine[0] && ids[1] == mine[0] && ids[2] == mine[0]
}

// hasCap reports whether the CapEff line of a status file holds bit.
func hasCap(status string, bit uint) bool {
	v, err := strconv.ParseUint(statusField(status, "CapEff:"), 16, 64)
	return err == nil && v&(1<<bit) != 0
}

// procStatus reads /proc/PID/status.
func procStatus(pid string) (string, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	return string(b), err
}

// checkNoExecs refuses, before anything is frozen, a container in whose
// PID namespace processes run that docker exec started (strayExecs).
func checkNoExecs(init int, healthcheck, shell []string) error {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init))
	if err != nil {
		return err
	}
	var procs []nsProc
	for _, p := range cgroupPIDs(init) {
		if other, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p)); err != nil || other != ns {
			continue
		}
		f := statFields(p)
		if len(f) < 2 || f[0] == "Z" {
			continue // gone, or a zombie its shim has yet to reap
		}
		ppid, _ := strconv.Atoi(f[1])
		raw, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p))
		procs = append(procs, nsProc{pid: p, ppid: ppid,
			cmdline: strings.Split(strings.TrimSuffix(string(raw), "\x00"), "\x00"), comm: strings.TrimSpace(string(comm))})
	}
	strays := strayExecs(init, procs, healthcheck, shell)
	if len(strays) == 0 {
		return nil
	}
	for i := range strays {
		strays[i].nsPid = nsPID(strays[i].pid) // for the message only
	}
	return execsError(strays)
}

// cgroupPIDs lists the processes of pid's cgroup (those docker exec starts
// in a container join it), or, where that cannot be read, every process
// on this host: the list a freeze-time check reads must be short.
func cgroupPIDs(pid int) []int {
	var out []int
	if dir, _ := cgroupDir(pid, "memory"); dir != "" {
		if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
			for _, f := range strings.Fields(string(b)) {
				if p, err := strconv.Atoi(f); err == nil {
					out = append(out, p)
				}
			}
			return out
		}
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if p, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, p)
		}
	}
	return out
}
