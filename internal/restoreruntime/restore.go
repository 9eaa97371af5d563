package restoreruntime

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/dockmove/dockmove/internal/atomicfile"
)

// criuConfigAnnotation makes runc hand CRIU a config file for this restore
// only (a global /etc/criu/runc.conf would also apply to dumps, and
// mntns-compat-mode makes every dump fail).
const criuConfigAnnotation = "org.criu.config"

// restore runs `runc restore` in place of `runc create` and records the
// outcome in the container's state directory.
func restore(inv Invocation, c createArgs, dir string, p Plan, log *slog.Logger) int {
	res := Result{Began: time.Now()}
	args, err := prepareRestore(inv, c, dir, p)
	res.Runc = err == nil
	if err == nil {
		log.Info("restoring", "id", c.id, "args", strings.Join(args, " "))
		res.RuncStarted = time.Now()
		err = runRunc(args)
		res.RuncEnded = time.Now()
	}
	// The restored processes hold their network namespace now.
	releaseNetns(dir)
	if err == nil && c.pidFile != "" {
		err = recordPID(dir, c.pidFile)
	}
	res.OK = err == nil
	if err != nil {
		res.Error = err.Error()
		res.ExitCode = exitCode(err)
		log.Error("restore failed", "id", c.id, "err", err)
		fmt.Fprintln(os.Stderr, "dockmove runtime: restore failed:", err)
	} else {
		atomicfile.Write(filepath.Join(dir, PendingStart), nil, 0o600)
		log.Info("restored", "id", c.id)
	}
	if data, jerr := json.Marshal(res); jerr == nil {
		atomicfile.Write(filepath.Join(dir, ResultFile), data, 0o600)
	}
	return res.ExitCode
}

// prepareRestore writes the CRIU config file, points the bundle at it and
// at the network namespace prepared for the restore, and returns runc's
// arguments.
func prepareRestore(inv Invocation, c createArgs, dir string, p Plan) ([]string, error) {
	conf := filepath.Join(dir, CRIUConfig)
	if err := os.WriteFile(conf, []byte(strings.Join(p.CRIUOptions, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	err := editBundle(filepath.Join(c.bundle, "config.json"), func(spec *bundleSpec) error {
		spec.annotate(criuConfigAnnotation, conf)
		if p.RootfsDir != "" {
			root, err := spec.rootPath(c.bundle)
			if err == nil {
				err = placeRootfs(p.RootfsDir, root)
			}
			if err != nil {
				return fmt.Errorf("writable layer: %w", err)
			}
		}
		if p.Init {
			if err := spec.setMountSource(InitMount, filepath.Join(dir, InitFile)); err != nil {
				return fmt.Errorf("docker-init: %w", err)
			}
		}
		if !p.Netns {
			return nil
		}
		var addrs []string
		if !spec.hasPrestartHooks() {
			addrs = p.Addresses
		}
		path, err := prepareNetns(dir, addrs)
		if err != nil {
			return err
		}
		return spec.setNamespacePath("network", path)
	})
	if err != nil {
		return nil, fmt.Errorf("prepare bundle: %w", err)
	}
	args := append(append([]string(nil), inv.Global...), "restore", "--detach",
		"--image-path", filepath.Join(dir, ImagesDir),
		"--work-path", filepath.Join(dir, WorkDir),
		"--bundle", c.bundle,
		"--manage-cgroups-mode", "soft")
	if c.pidFile != "" {
		args = append(args, "--pid-file", c.pidFile)
	}
	if c.consoleSocket != "" {
		args = append(args, "--console-socket", c.consoleSocket)
	}
	for _, f := range []struct {
		flag string
		on   bool
	}{{"--tcp-established", p.TCPEstablished}, {"--ext-unix-sk", p.ExtUnixSk}, {"--file-locks", p.FileLocks}, {"--lazy-pages", p.LazyPages}} {
		if f.on {
			args = append(args, f.flag)
		}
	}
	return append(args, c.id), nil
}

// bundleSpec is an OCI config.json as runc reads it, edited in the few
// places the restore needs, every other field kept byte for byte.
type bundleSpec struct {
	top   map[string]json.RawMessage
	linux map[string]json.RawMessage
	ann   map[string]string
}

// editBundle applies edit to the config.json at path.
func editBundle(path string, edit func(*bundleSpec) error) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := bundleSpec{ann: map[string]string{}, linux: map[string]json.RawMessage{}}
	if err := json.Unmarshal(data, &s.top); err != nil {
		return err
	}
	if raw, ok := s.top["annotations"]; ok {
		if err := json.Unmarshal(raw, &s.ann); err != nil {
			return err
		}
	}
	if raw, ok := s.top["linux"]; ok {
		if err := json.Unmarshal(raw, &s.linux); err != nil {
			return err
		}
	}
	if err := edit(&s); err != nil {
		return err
	}
	if s.top["annotations"], err = json.Marshal(s.ann); err != nil {
		return err
	}
	if _, had := s.top["linux"]; had || len(s.linux) > 0 {
		if s.top["linux"], err = json.Marshal(s.linux); err != nil {
			return err
		}
	}
	out, err := json.Marshal(s.top)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}

func (s *bundleSpec) annotate(key, value string) { s.ann[key] = value }

// rootPath is the container's root filesystem (relative paths are the
// bundle's).
func (s *bundleSpec) rootPath(bundle string) (string, error) {
	var root struct {
		Path string `json:"path"`
	}
	if err := json.Unmarshal(s.top["root"], &root); err != nil || root.Path == "" {
		return "", fmt.Errorf("the bundle names no root filesystem (%v)", err)
	}
	if !filepath.IsAbs(root.Path) {
		root.Path = filepath.Join(bundle, root.Path)
	}
	return root.Path, nil
}

// hasPrestartHooks reports whether something (Docker up to 25's network
// hook) runs before the processes start, inside runc's create or restore.
func (s *bundleSpec) hasPrestartHooks() bool {
	var hooks struct {
		Prestart      []json.RawMessage `json:"prestart"`
		CreateRuntime []json.RawMessage `json:"createRuntime"`
	}
	if raw, ok := s.top["hooks"]; ok && json.Unmarshal(raw, &hooks) == nil {
		return len(hooks.Prestart)+len(hooks.CreateRuntime) > 0
	}
	return false
}

// setNamespacePath gives the container's namespace of type typ a path.
func (s *bundleSpec) setNamespacePath(typ, path string) error {
	raw, err := setWhere(s.linux["namespaces"], "type", typ, "path", path)
	if err != nil {
		return fmt.Errorf("the bundle's %s namespace: %w", typ, err)
	}
	s.linux["namespaces"] = raw
	return nil
}

// setMountSource binds source at the bundle's bind mount on destination
// (runc restore maps the images' external mount of that path to it).
func (s *bundleSpec) setMountSource(destination, source string) error {
	raw, err := setWhere(s.top["mounts"], "destination", destination, "source", source)
	if err != nil {
		return fmt.Errorf("the bundle's mount at %s: %w", destination, err)
	}
	s.top["mounts"] = raw
	return nil
}

// setWhere sets field to value in the objects of the JSON array list whose
// key is match; it fails if there is none.
func setWhere(list json.RawMessage, key, match, field, value string) (json.RawMessage, error) {
	var objs []map[string]json.RawMessage
	if len(list) > 0 {
		if err := json.Unmarshal(list, &objs); err != nil {
			return nil, err
		}
	}
	m, _ := json.Marshal(match)
	v, _ := json.Marshal(value)
	found := false
	for _, o := range objs {
		if string(o[key]) == string(m) {
			o[field], found = v, true
		}
	}
	if !found {
		return nil, errors.New("not found")
	}
	return json.Marshal(objs)
}

// runRunc runs runc as a child with this process's stdio, which containerd
// set up for the container (runc restore re-attaches it through
// descriptors.json).
// exitCode is the exit status err reports (1 if it is not an exit).
func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return 1
}

func runRunc(args []string) error {
	runc, err := exec.LookPath("runc")
	if err != nil {
		return err
	}
	cmd := exec.Command(runc, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	return cmd.Run()
}
