package migrate

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// Processes outside the init's tree are what docker exec started, except
// the healthcheck's (run by CMD or through the shell for CMD-SHELL), ones
// runc is still setting up, and their children. Fake process tables.
func TestStrayExecsWithFakeProcs(t *testing.T) {
	procs := []nsProc{
		{pid: 100, ppid: 90, nsPid: 1, cmdline: []string{"/usr/local/bin/app"}},                        // init (parent: the shim)
		{pid: 101, ppid: 100, nsPid: 7, cmdline: []string{"worker"}},                                   // its child
		{pid: 102, ppid: 101, nsPid: 8, cmdline: []string{"grandchild"}},                               //
		{pid: 200, ppid: 90, nsPid: 20, cmdline: []string{"sh"}, comm: "sh"},                           // docker exec -it c sh
		{pid: 201, ppid: 200, nsPid: 21, cmdline: []string{"sleep", "1000"}},                           // started in that shell
		{pid: 300, ppid: 90, nsPid: 30, cmdline: []string{"/bin/sh", "-c", "curl -f localhost"}},       // the healthcheck
		{pid: 301, ppid: 300, nsPid: 31, cmdline: []string{"curl", "-f", "localhost"}},                 // its child
		{pid: 400, ppid: 90, nsPid: 40, cmdline: []string{"/bin/sh", "-c", "curl -f localhost/other"}}, // not the healthcheck
		{pid: 500, ppid: 90, nsPid: 49, cmdline: []string{"runc", "init"}, comm: "runc:[2:INIT]"},      // an exec being set up
		{pid: 501, ppid: 90, nsPid: 50, cmdline: []string{"/usr/bin/runc", "init"}},                    //
	}
	health := []string{"CMD-SHELL", "curl -f localhost"}
	var got []int
	for _, p := range strayExecs(100, procs, health, nil) {
		got = append(got, p.pid)
	}
	if want := []int{200, 201, 400}; !slices.Equal(got, want) {
		t.Fatalf("strays %v, want %v", got, want)
	}
	// CMD form, and a container shell of its own for CMD-SHELL.
	if !isHealthcheck([]string{"pg_isready", "-U", "x"}, []string{"CMD", "pg_isready", "-U", "x"}, nil) ||
		!isHealthcheck([]string{"/bin/bash", "-o", "pipefail", "-c", "x"}, []string{"CMD-SHELL", "x"}, []string{"/bin/bash", "-o", "pipefail", "-c"}) ||
		isHealthcheck([]string{"/bin/sh", "-c", "x"}, []string{"NONE"}, nil) {
		t.Fatal("healthcheck forms")
	}
	// Only the init's tree: nothing to refuse.
	if s := strayExecs(100, procs[:3], nil, nil); len(s) != 0 {
		t.Fatalf("strays in the init's tree alone: %v", s)
	}
	err := execsError(strayExecs(100, procs, health, nil))
	if !errors.Is(err, ErrCannotMove) || !strings.Contains(err.Error(), `"sleep 1000" (pid 201 here, 21 inside)`) || !strings.Contains(err.Error(), "end them") {
		t.Fatalf("error: %v", err)
	}
}
