package migrate

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// A container's processes that `docker exec` started are not descendants
// of its init: their parent is the runtime's shim, outside the container.
// CRIU dumps the tree of the init only, so such a process would not move:
// it would end with the original, and the copy would run without it. The
// source refuses the container while one runs, except its healthcheck's
// (Docker runs the check by exec, the destination's Docker runs it again)
// and one that the runtime is still setting up (inSetup).

// nsProc is what the check needs of a process in the container's PID
// namespace.
type nsProc struct {
	pid, ppid int // as this host numbers them
	nsPid     int // as the container does
	cmdline   []string
	comm      string
}

// strayExecs returns the processes of procs (those of the container's PID
// namespace) outside the tree of init that are not its healthcheck (test,
// Docker's Healthcheck.Test; shell, the container's shell for CMD-SHELL)
// or descendants of it.
func strayExecs(init int, procs []nsProc, test, shell []string) []nsProc {
	byPid := map[int]nsProc{}
	for _, p := range procs {
		byPid[p.pid] = p
	}
	// root follows p's parents within the namespace to the process that
	// entered it: the init, or what an exec started.
	root := func(p nsProc) nsProc {
		for seen := 0; seen < len(procs); seen++ {
			parent, ok := byPid[p.ppid]
			if !ok || p.pid == init {
				break
			}
			p = parent
		}
		return p
	}
	var out []nsProc
	for _, p := range procs {
		r := root(p)
		if r.pid == init || isHealthcheck(r.cmdline, test, shell) || inSetup(r) {
			continue
		}
		out = append(out, p)
	}
	return out
}

// inSetup reports an exec that the runtime is still setting up: runc's
// own process, re-executed as "runc init", which becomes the command once
// it joined the container. The healthcheck's exec spends its first tens of
// milliseconds so (seconds under an emulated CPU, where a check saw it).
func inSetup(p nsProc) bool {
	return len(p.cmdline) == 2 && filepath.Base(p.cmdline[0]) == "runc" && p.cmdline[1] == "init" ||
		strings.HasPrefix(p.comm, "runc:[")
}

// isHealthcheck reports whether cmdline is how Docker runs test: the
// command itself for CMD, through the shell for CMD-SHELL.
func isHealthcheck(cmdline, test, shell []string) bool {
	if len(test) < 2 {
		return false
	}
	switch test[0] {
	case "CMD":
		return slices.Equal(cmdline, test[1:])
	case "CMD-SHELL":
		if len(shell) == 0 {
			shell = []string{"/bin/sh", "-c"}
		}
		return slices.Equal(cmdline, append(slices.Clone(shell), test[1]))
	}
	return false
}

// execsError names the processes an exec started and says what to do.
func execsError(strays []nsProc) error {
	var names []string
	for _, p := range strays {
		what := p.comm
		if len(p.cmdline) > 0 {
			what = strings.Join(p.cmdline, " ")
			if len(what) > 60 {
				what = what[:57] + "..."
			}
		}
		names = append(names, fmt.Sprintf("%q (pid %d here, %d inside)", what, p.pid, p.nsPid))
	}
	return fmt.Errorf("%w: processes started by docker exec run in it: %s; CRIU moves the container's own processes "+
		"(its init and their children) only, so these would end with the original: end them (or let them finish), then migrate again",
		ErrCannotMove, strings.Join(names, ", "))
}
