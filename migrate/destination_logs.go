//go:build linux

package migrate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

// The container's log files arrive in its restore directory (source_logs.go
// says how they travel) and are put where host2's Docker keeps the new
// container's log before it starts: Docker appends to the file it finds,
// so `docker logs` shows the whole history.

// logsPolicy bounds a log stream: its announced size may have grown since
// the preflight, not without end.
func (in *incoming) logsPolicy() transfer.Policy {
	p := imagePolicy()
	p.MaxEntries = protocol.MaxRotatedLogs + 2
	p.MaxTotalSize = satAdd(satAdd(in.pre.Sizes.Logs, in.pre.Sizes.Logs), 64<<20)
	return p
}

// receiveLogs stores the log files sent before the freeze (tail false) or
// what the current one gained since.
func (in *incoming) receiveLogs(ctx context.Context, dir string, tail bool) error {
	stream := protocol.StreamLogs
	if tail {
		stream = protocol.StreamLogsTail
	}
	if _, err := in.sess.ReceiveDir(ctx, stream, filepath.Join(dir, stream), in.logsPolicy()); err != nil {
		return fmt.Errorf("the container's logs: %w", err)
	}
	return nil
}

var logFilePattern = regexp.MustCompile(`^(current|tail|rotated-([1-9][0-9]?|100)(\.gz)?)$`)

// installLogs writes the container's log files into its directory in
// host2's Docker (dockerRoot), from the restore directory dir.
func (in *incoming) installLogs(dir, dockerRoot string) error {
	base, tail := filepath.Join(dir, protocol.StreamLogs), filepath.Join(dir, protocol.StreamLogsTail)
	set, err := logFiles(base, false)
	if err != nil {
		return err
	}
	more, err := logFiles(tail, true)
	if err != nil {
		return err
	}
	if _, rotated := more[protocol.CurrentLog]; rotated {
		set, more = more, nil // rotated since: the whole set again
	}
	if _, ok := set[protocol.CurrentLog]; !ok {
		return fmt.Errorf("%w: the container's logs came without the current one", transfer.ErrBadMessage)
	}
	id := in.state.ContainerID
	root, err := os.OpenRoot(filepath.Join(dockerRoot, "containers", id))
	if err != nil {
		return fmt.Errorf("the new container's directory in Docker: %w", err)
	}
	defer root.Close()
	current := id + "-json.log" // moby: daemon/logger/jsonfilelog
	if in.pre.Logs == protocol.LogsLocal {
		current = localLog
		if err := root.Mkdir(filepath.Dir(localLog), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	for name, path := range set {
		target := current
		if name != protocol.CurrentLog {
			m := logFilePattern.FindStringSubmatch(name) // rotated-N[.gz]
			target = current + "." + m[2] + m[3]
		}
		parts := []string{path}
		if name == protocol.CurrentLog && more[protocol.LogTail] != "" {
			parts = append(parts, more[protocol.LogTail])
		}
		if err := writeJoined(root, target, parts); err != nil {
			return fmt.Errorf("the container's log %s: %w", target, err)
		}
	}
	return nil
}

// logFiles lists the files of a received log directory by name, refusing
// names that are not log files (tail: the tail stream's).
func logFiles(dir string, tail bool) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	files := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !logFilePattern.MatchString(name) || (name == protocol.LogTail && !tail) {
			return nil, fmt.Errorf("%w: %q among the container's logs", transfer.ErrBadMessage, name)
		}
		files[name] = filepath.Join(dir, name)
	}
	if _, t := files[protocol.LogTail]; t && len(files) > 1 {
		return nil, fmt.Errorf("%w: a log tail with other files", transfer.ErrBadMessage)
	}
	return files, nil
}

// writeJoined writes the concatenation of parts to a new file name below
// root, as Docker writes its logs (0640).
func writeJoined(root *os.Root, name string, parts []string) error {
	f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	for _, p := range parts {
		src, err := os.Open(p)
		if err == nil {
			_, err = io.Copy(f, src)
			src.Close()
		}
		if err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
