//go:build linux

package migrate

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dockmove/dockmove/protocol"
	"github.com/dockmove/dockmove/transfer"
)

// The log files received are put where Docker keeps the new container's
// logs: the current one with its tail appended, the rotated ones beside it
// by number; a set sent again after a rotation replaces the first; other
// names are refused. Real files, a fake Docker root.
func TestInstallLogsWithFakeDockerRoot(t *testing.T) {
	const id = "c0ffee"
	type files map[string]string
	for _, c := range []struct {
		name       string
		driver     string
		base, tail files
		want       files // by path below the container's directory
		err        error
	}{
		{"tail appended", protocol.LogsJSONFile,
			files{"current": "a\nb\n", "rotated-1": "0\n", "rotated-2.gz": "gz"}, files{"tail": "c\n"},
			files{id + "-json.log": "a\nb\nc\n", id + "-json.log.1": "0\n", id + "-json.log.2.gz": "gz"}, nil},
		{"rotated since: the set again", protocol.LogsJSONFile,
			files{"current": "a\n"}, files{"current": "c\n", "rotated-1": "a\nb\n"},
			files{id + "-json.log": "c\n", id + "-json.log.1": "a\nb\n"}, nil},
		{"local driver", protocol.LogsLocal,
			files{"current": "x"}, files{"tail": "y"},
			files{"local-logs/container.log": "xy"}, nil},
		{"a name that is no log", protocol.LogsJSONFile, files{"current": "a", "../../etc/passwd": "x"}, files{}, nil, transfer.ErrBadMessage},
		{"a tail before the freeze", protocol.LogsJSONFile, files{"current": "a", "tail": "b"}, files{}, nil, transfer.ErrBadMessage},
		{"no current log", protocol.LogsJSONFile, files{"rotated-1": "a"}, files{"tail": "b"}, nil, transfer.ErrBadMessage},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir, dockerRoot := t.TempDir(), t.TempDir()
			cdir := filepath.Join(dockerRoot, "containers", id)
			if err := os.MkdirAll(cdir, 0o700); err != nil {
				t.Fatal(err)
			}
			for stream, fs := range map[string]files{protocol.StreamLogs: c.base, protocol.StreamLogsTail: c.tail} {
				os.MkdirAll(filepath.Join(dir, stream), 0o700)
				for name, data := range fs {
					if filepath.Base(name) != name {
						os.MkdirAll(filepath.Join(dir, stream, "sub"), 0o700)
						name = "sub"
					}
					os.WriteFile(filepath.Join(dir, stream, name), []byte(data), 0o600)
				}
			}
			in := &incoming{pre: &protocol.Preflight{Logs: c.driver}, state: migrationState{ContainerID: id}}
			err := in.installLogs(dir, dockerRoot)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("got %v, want %v", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for path, want := range c.want {
				got, err := os.ReadFile(filepath.Join(cdir, path))
				if err != nil || string(got) != want {
					t.Errorf("%s: %q (%v), want %q", path, got, err, want)
				}
			}
			// Nothing else was written.
			var n int
			filepath.WalkDir(cdir, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					n++
				}
				return nil
			})
			if n != len(c.want) {
				t.Errorf("%d files in the container's directory, want %d", n, len(c.want))
			}
		})
	}
}
