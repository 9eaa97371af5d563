//go:build linux

package migrate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockmove/dockmove/internal/restoreruntime"
	"github.com/dockmove/dockmove/protocol"
)

// The destination takes from the init stream one regular file of the
// announced size and digest, keeps its permission bits without set-ID
// ones, and refuses anything else. Real streams over fake sessions (a
// pipe); no Docker.
func TestReceiveInitTakesOnlyTheAnnouncedFileWithFakeSessions(t *testing.T) {
	content := bytes.Repeat([]byte("tini"), 1000)
	sum := sha256.Sum256(content)
	announced := &protocol.FileDigest{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content))}
	file := func(name string, data []byte, mode os.FileMode) func(dir string) {
		return func(dir string) {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range []struct {
		name  string
		fill  []func(dir string)
		error string // "" when accepted
	}{
		{"the announced file", []func(string){file(protocol.InitFile, content, 0o755)}, ""},
		{"set-ID bits dropped", []func(string){file(protocol.InitFile, content, 0o755|os.ModeSetuid)}, ""},
		{"another content", []func(string){file(protocol.InitFile, bytes.ToUpper(content), 0o755)}, "not the one announced"},
		{"larger than announced", []func(string){file(protocol.InitFile, append(content, 'x'), 0o755)}, "over its limit"},
		{"another name", []func(string){file("sh", content, 0o755)}, "not one file docker-init"},
		{"a second file", []func(string){file(protocol.InitFile, content, 0o755), file("x", nil, 0o644)}, "not one file docker-init"},
		{"a symlink", []func(string){func(dir string) { os.Symlink("/etc/shadow", filepath.Join(dir, protocol.InitFile)) }}, "symlink"},
	} {
		t.Run(c.name, func(t *testing.T) {
			send := t.TempDir()
			for _, f := range c.fill {
				f(send)
			}
			state := t.TempDir()
			s := &Server{cfg: DefaultDestConfig(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			src, dst := pipeSessions(t)
			in := &incoming{srv: s, sess: dst, log: s.log, pre: &protocol.Preflight{Container: protocol.ContainerSpec{InitBinary: announced}}}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			go src.SendDir(ctx, protocol.StreamInit, send)
			err := in.receiveInit(ctx, state)
			if c.error == "" {
				if err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(filepath.Join(state, restoreruntime.InitFile))
				if err != nil || fi.Mode() != 0o755 {
					t.Fatalf("stored docker-init: %v, %v; want mode 0755", fi, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.error) {
				t.Fatalf("got %v, want an error with %q", err, c.error)
			}
		})
	}
}
