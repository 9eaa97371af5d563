package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// criuConfigAnnotation makes runc hand CRIU a config file for this restore
// only (a global /etc/criu/runc.conf would also apply to dumps, and
// mntns-compat-mode makes every dump fail).
const criuConfigAnnotation = "org.criu.config"

// restore runs `runc restore` in place of `runc create` and records the
// outcome in the container's state directory.
func restore(inv Invocation, c createArgs, dir string, p Plan, log *slog.Logger) int {
	args, err := prepareRestore(inv, c, dir, p)
	if err == nil {
		log.Info("restoring", "id", c.id, "args", strings.Join(args, " "))
		err = runRunc(args)
	}
	res := Result{OK: err == nil}
	if err != nil {
		res.Error = err.Error()
		res.ExitCode = 1
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			res.ExitCode = ee.ExitCode()
		}
		log.Error("restore failed", "id", c.id, "err", err)
		fmt.Fprintln(os.Stderr, "dockmove runtime: restore failed:", err)
	} else {
		os.WriteFile(filepath.Join(dir, PendingStart), nil, 0o600)
		log.Info("restored", "id", c.id)
	}
	if data, jerr := json.Marshal(res); jerr == nil {
		os.WriteFile(filepath.Join(dir, ResultFile), data, 0o600)
	}
	return res.ExitCode
}

// prepareRestore writes the CRIU config file, points the bundle at it and
// returns runc's arguments.
func prepareRestore(inv Invocation, c createArgs, dir string, p Plan) ([]string, error) {
	conf := filepath.Join(dir, CRIUConfig)
	if err := os.WriteFile(conf, []byte(strings.Join(p.CRIUOptions, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	if err := annotateBundle(filepath.Join(c.bundle, "config.json"), criuConfigAnnotation, conf); err != nil {
		return nil, fmt.Errorf("annotate bundle: %w", err)
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

// annotateBundle sets one annotation in an OCI config.json, keeping every
// other field byte for byte.
func annotateBundle(path, key, value string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var spec map[string]json.RawMessage
	if err := json.Unmarshal(data, &spec); err != nil {
		return err
	}
	ann := map[string]string{}
	if raw, ok := spec["annotations"]; ok {
		if err := json.Unmarshal(raw, &ann); err != nil {
			return err
		}
	}
	ann[key] = value
	if spec["annotations"], err = json.Marshal(ann); err != nil {
		return err
	}
	out, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}

// runRunc runs runc as a child with this process's stdio, which containerd
// set up for the container (runc restore re-attaches it through
// descriptors.json).
func runRunc(args []string) error {
	runc, err := exec.LookPath("runc")
	if err != nil {
		return err
	}
	cmd := exec.Command(runc, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	return cmd.Run()
}
