//go:build linux

package migrate

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/protocol"
)

// The source's work directory holds one directory per dump or image in
// flight, each locked (flock on its .lock file) by the migrate-src that
// made it for as long as it runs. A migrate-src that was killed leaves its
// directory unlocked: the next one removes it, since a dump with its
// pre-copy rounds can be as large as the container's memory.

const lockName = ".lock"

// workPrefixes are the directories the source makes in its work directory.
var workPrefixes = []string{"dump-", "image-", protocol.StreamInit + "-", protocol.StreamLogs + "-"}

// claimDir makes a new directory under parent and locks it until release.
func claimDir(parent, prefix string) (dir string, release func(), err error) {
	if !hasPrefix(prefix, workPrefixes) {
		// sweepStale would never find it.
		return "", nil, fmt.Errorf("work directory prefix %q is not among %v", prefix, workPrefixes)
	}
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", nil, err
	}
	if dir, err = os.MkdirTemp(parent, prefix); err != nil {
		return "", nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, func() {
		os.RemoveAll(dir)
		f.Close()
	}, nil
}

// sweepStale removes what killed runs left under parent: directories whose
// lock nobody holds. A directory without a lock file is left alone for a
// minute, in case its maker is between creating and locking it.
func sweepStale(parent string, log *slog.Logger) {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.IsDir() || !hasPrefix(e.Name(), workPrefixes) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR, 0)
		if errors.Is(err, os.ErrNotExist) {
			if info, serr := e.Info(); serr == nil && time.Since(info.ModTime()) > time.Minute {
				os.RemoveAll(dir)
			}
			continue
		}
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			os.RemoveAll(dir)
			log.Info("removed what an interrupted migration left", "dir", dir)
		}
		f.Close()
	}
}

func hasPrefix(name string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// Guard records (WORK/guards: every migration's guard log, and the result
// of each guard that acted) are kept for guardKeepFor, and at most
// guardKeepCount of them; `migrate-src status` reads the results.
const (
	guardKeepFor   = 30 * 24 * time.Hour
	guardKeepCount = 200
)

// pruneGuardRecords removes guard records older than keepFor and, beyond
// the newest keepCount, the oldest ones; a record written in the last hour
// (its guard may still be at work) always stays.
func pruneGuardRecords(dir string, keepFor time.Duration, keepCount int) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type record struct {
		path string
		mod  time.Time
	}
	var recs []record
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".json") && !strings.HasSuffix(e.Name(), ".log") {
			continue
		}
		if info, err := e.Info(); err == nil {
			recs = append(recs, record{filepath.Join(dir, e.Name()), info.ModTime()})
		}
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].mod.After(recs[j].mod) })
	for i, r := range recs {
		age := time.Since(r.mod)
		if age > time.Hour && (age > keepFor || i >= keepCount) {
			os.Remove(r.path)
		}
	}
}
