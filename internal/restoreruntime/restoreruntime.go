// Package restoreruntime is the restore runtime: a tiny OCI runtime that dockerd calls
// instead of runc for containers created by migrate-dst. On `create` for a
// container that has a prepared restore plan it runs `runc restore`; on the
// `start` that follows it does nothing; a later create before the migration
// ends is refused (runc would start the container afresh beside the
// original); every other call, and every create once migrate-dst has ended
// the migration (removing the plan), goes to runc unchanged. So a container
// keeps behaving exactly like a runc container for the rest of its life.
package restoreruntime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dockmove/dockmove/internal/atomicfile"
)

// Name is the runtime name registered with dockerd.
const Name = "dockmove"

// DefaultStateDir is where plans live unless the runtime is registered with
// `--dockmove-state DIR` in its runtimeArgs.
const DefaultStateDir = "/var/lib/dockmove/restore"

// StateFlag passes the state directory through dockerd's runtimeArgs.
const StateFlag = "--dockmove-state"

// Files inside a container's state directory STATE/<container id>/.
const (
	PlanFile     = "plan.json" // written by migrate-dst: restore this container
	ImagesDir    = "images"    // the CRIU images to restore from
	InitDir      = "init"      // the source's docker-init (Plan.Init)
	WorkDir      = "work"      // CRIU's work directory (restore.log)
	CRIUConfig   = "criu.conf" // per-restore CRIU options (org.criu.config)
	ConsumedFile = "consumed"  // the plan was used; never restore, nor create, again
	PendingStart = "pending-start"
	ResultFile   = "result.json" // outcome of the restore, for migrate-dst
	LogFile      = "runtime.log"
)

// Plan is what migrate-dst asks the runtime to do for one container.
type Plan struct {
	// LazyPages restores with --lazy-pages; the lazy-pages daemon must be
	// listening in WorkDir already.
	LazyPages bool `json:"lazy_pages"`
	// TCPEstablished, ExtUnixSk and FileLocks mirror the dump options; a
	// restore without them fails on images that need them.
	TCPEstablished bool `json:"tcp_established"`
	ExtUnixSk      bool `json:"ext_unix_sk"`
	FileLocks      bool `json:"file_locks"`
	// CRIUOptions are written to the per-restore CRIU config file, one per
	// line (e.g. "mntns-compat-mode").
	CRIUOptions []string `json:"criu_options"`
	// Netns says the images name the container's network namespace as
	// external (NetnsKey): the runtime provides one (see netns_linux.go).
	Netns bool `json:"netns"`
	// Addresses are the container's IP addresses on the destination; when
	// Docker wires the network only after `create`, the restore's network
	// namespace holds them on a temporary interface so that CRIU can put
	// TCP connections back.
	Addresses []string `json:"addresses,omitempty"`
	// RootfsDir, when set, holds the container's writable layer: with the
	// containerd image store the layer's directory is known only once
	// Docker has mounted the container's root filesystem for `create`, so
	// the runtime moves it in then, by rename (RootfsDir lies in Docker's
	// data root, on the same mount).
	RootfsDir string `json:"rootfs_dir,omitempty"`
	// Init restores an --init container with the source's docker-init,
	// InitDir/docker-init, bound where Docker binds its own: the restored
	// PID 1 maps that file, and CRIU restores the mapping only from it.
	Init bool `json:"init,omitempty"`
}

// InitMount is where Docker binds docker-init into an --init container.
const InitMount = "/sbin/docker-init"

// InitFile is the docker-init a Plan.Init restore binds, in the container's
// state directory.
const InitFile = InitDir + "/docker-init"

// Result is what the runtime reports back after a restore attempt.
type Result struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Runc says the failure came from runc restore (CRIU's log tells why),
	// not from the runtime's own preparation.
	Runc     bool `json:"runc,omitempty"`
	ExitCode int  `json:"exit_code"`
	// When the runtime took the create over, and runc restore's run: the
	// destination's breakdown of the freeze (zero where not reached).
	Began       time.Time `json:"began"`
	RuncStarted time.Time `json:"runc_started"`
	RuncEnded   time.Time `json:"runc_ended"`
}

// ErrBadPlan reports a plan that cannot be used.
var ErrBadPlan = errors.New("restore runtime: bad restore plan")

// ContainerDir is the state directory of container id.
func ContainerDir(state, id string) (string, error) {
	if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
		return "", fmt.Errorf("restore runtime: invalid container id %q", id)
	}
	return filepath.Join(state, id), nil
}

// WritePlan prepares container id for restore: dir must already hold the
// images in ImagesDir.
func WritePlan(dir string, p Plan) error {
	for _, o := range p.CRIUOptions {
		if strings.ContainsAny(o, "\n\x00") || o == "" {
			return fmt.Errorf("%w: CRIU option %q", ErrBadPlan, o)
		}
	}
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, WorkDir), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, PlanFile), data, 0o600)
}

// ReadResult returns the outcome of the restore of the container whose
// state directory is dir, or an error if the runtime has not reported yet.
func ReadResult(dir string) (Result, error) {
	var r Result
	data, err := os.ReadFile(filepath.Join(dir, ResultFile))
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(data, &r)
}
