package restoreruntime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/dockmove/dockmove/internal/atomicfile"
)

// Invocation is one call of the runtime, as containerd's shim makes it:
// `RUNTIME [runtimeArgs] [runc global flags] COMMAND [flags] [ID]`.
type Invocation struct {
	State   string   // from --dockmove-state, else DefaultStateDir
	Global  []string // runc global flags, passed on unchanged
	Command string   // create, start, delete, kill, state, ...
	Args    []string // the command's own flags and arguments
}

// runc's global flags that take a value.
var globalWithValue = map[string]bool{"--root": true, "--log": true, "--log-format": true, "--criu": true, "--rootless": true}

// Parse splits argv (without the program name).
func Parse(argv []string) (Invocation, error) {
	inv := Invocation{State: DefaultStateDir}
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == StateFlag:
			if i+1 >= len(argv) {
				return inv, fmt.Errorf("restore runtime: %s needs a value", StateFlag)
			}
			inv.State = argv[i+1]
			i++
		case strings.HasPrefix(a, StateFlag+"="):
			inv.State = strings.TrimPrefix(a, StateFlag+"=")
		case strings.HasPrefix(a, "-"):
			inv.Global = append(inv.Global, a)
			if globalWithValue[a] && i+1 < len(argv) {
				inv.Global = append(inv.Global, argv[i+1])
				i++
			}
		default:
			inv.Command, inv.Args = a, argv[i+1:]
			return inv, nil
		}
	}
	return inv, nil // no command: runc prints its help
}

// createArgs are the create flags the restore needs.
type createArgs struct {
	id, bundle, pidFile, consoleSocket string
}

// create flags that take a value (runc 1.1).
var createWithValue = map[string]bool{"--bundle": true, "-b": true, "--pid-file": true, "--console-socket": true, "--preserve-fds": true}

func parseCreate(args []string) (createArgs, error) {
	var c createArgs
	var positional []string
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(args[i], "=")
		if !strings.HasPrefix(name, "-") {
			positional = append(positional, args[i])
			continue
		}
		if createWithValue[name] && !hasValue {
			if i+1 >= len(args) {
				return c, fmt.Errorf("restore runtime: create %s needs a value", name)
			}
			value = args[i+1]
			i++
		}
		switch name {
		case "--bundle", "-b":
			c.bundle = value
		case "--pid-file":
			c.pidFile = value
		case "--console-socket":
			c.consoleSocket = value
		}
	}
	if len(positional) != 1 {
		return c, fmt.Errorf("restore runtime: create wants one container id, got %q", positional)
	}
	c.id = positional[0]
	if c.bundle == "" {
		c.bundle, _ = os.Getwd()
	}
	return c, nil
}

// Main runs the runtime and returns its exit code.
func Main(argv []string) int {
	inv, err := Parse(argv)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log := openLog(inv.State)
	switch inv.Command {
	case "create":
		if code, handled := maybeRestore(inv, log); handled {
			return code
		}
		if c, err := parseCreate(inv.Args); err == nil && c.pidFile != "" && isReservation(c.bundle) {
			return createReservation(inv, c, log)
		}
	case "start":
		if len(inv.Args) > 0 && consumePendingStart(inv.State, inv.Args[len(inv.Args)-1]) {
			id := inv.Args[len(inv.Args)-1]
			// Docker has wired the container's network by now.
			dir, _ := ContainerDir(inv.State, id)
			if err := dropRestoreIface(dir); err != nil {
				log.Error("start after restore", "id", id, "err", err)
				fmt.Fprintln(os.Stderr, "dockmove runtime: start after restore:", err)
				return 1
			}
			log.Info("start after restore: the container already runs", "id", id)
			return 0
		}
	}
	return execRunc(append(inv.Global, append([]string{inv.Command}, inv.Args...)...))
}

// logKeep bounds the runtime's log: past it, the log becomes LogFile.1
// (the one before is dropped) and a new one begins. Docker runs the runtime
// for every command on every container that uses it, for as long as the
// host lives.
const logKeep = 8 << 20

// openLog opens the runtime's log in state, rotating it once it is over
// logKeep.
func openLog(state string) *slog.Logger {
	path := filepath.Join(state, LogFile)
	if st, err := os.Lstat(path); err == nil && st.Mode().IsRegular() && st.Size() > logKeep {
		os.Rename(path, path+".1") // a concurrent run may have done it: either way a new log
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(f, nil))
}

// execRunc replaces this process with runc, so that file descriptors,
// signals and the exit status are runc's own.
func execRunc(args []string) int {
	runc, err := exec.LookPath("runc")
	if err != nil {
		fmt.Fprintln(os.Stderr, "dockmove runtime:", err)
		return 127
	}
	err = syscall.Exec(runc, append([]string{"runc"}, args...), os.Environ())
	fmt.Fprintln(os.Stderr, "dockmove runtime: exec runc:", err)
	return 127
}

// maybeRestore performs the restore when the container has an unused plan.
func maybeRestore(inv Invocation, log *slog.Logger) (code int, handled bool) {
	c, err := parseCreate(inv.Args)
	if err != nil {
		return 0, false // let runc report its own usage error
	}
	dir, err := ContainerDir(inv.State, c.id)
	if err != nil {
		return 0, false
	}
	plan, err := readPlan(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false
	}
	if errors.Is(err, errUncommitted) {
		// dockerd starting the container again (its restart after a crash
		// or an upgrade, or the copy exiting): runc would start it afresh,
		// a second copy beside the original.
		log.Error("refused to start afresh a container whose migration has not committed", "id", c.id)
		fmt.Fprintf(os.Stderr, "dockmove runtime: container %s: %v\n", c.id, err)
		return 1, true
	}
	if err != nil {
		log.Error("unusable plan", "id", c.id, "err", err)
		fmt.Fprintln(os.Stderr, "dockmove runtime:", err)
		return 1, true
	}
	// Consumed before running: whatever happens next, these images are
	// never restored a second time.
	if err := atomicfile.Write(filepath.Join(dir, ConsumedFile), nil, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "dockmove runtime:", err)
		return 1, true
	}
	code = restore(inv, c, dir, plan, log)
	return code, true
}

// errUncommitted refuses a second create of a restored container before
// its migration ends: migrate-dst removes the container's state here at
// the commit (later creates go to runc) or removes the container.
var errUncommitted = errors.New("restored by a migration that has not committed yet; not started afresh while the original may still " +
	"run on the source (migrate-dst commits or rolls it back; `migrate-dst status` lists it)")

// readPlan reads the plan in dir: fs.ErrNotExist without one, errUncommitted
// once it was used.
func readPlan(dir string) (Plan, error) {
	var p Plan
	if _, err := os.Stat(filepath.Join(dir, ConsumedFile)); err == nil {
		return p, errUncommitted
	}
	data, err := os.ReadFile(filepath.Join(dir, PlanFile))
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return p, fmt.Errorf("%w: %v", ErrBadPlan, err)
	}
	return p, nil
}

func consumePendingStart(state, id string) bool {
	dir, err := ContainerDir(state, id)
	if err != nil {
		return false
	}
	return os.Remove(filepath.Join(dir, PendingStart)) == nil
}
