//go:build linux

package migrate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// One migration per container: migrate-src holds a lock on the container
// (an flock on WORK/locks/ID.lock) from before it connects until it is
// done, and hands it to its guard, which keeps it while it puts the host
// right after a killed migrate-src. A second migrate-src of the same
// container, whatever its destination, is refused, naming the first.

const locksDirName = "locks"

// lockHolder is written into the lock file by whoever holds it.
type lockHolder struct {
	Pid         int       `json:"pid"`
	Role        string    `json:"role"` // "migrate-src" or "guard"
	Destination string    `json:"destination,omitempty"`
	Since       time.Time `json:"since"`
}

// ErrInFlight reports a container that another migration is moving.
var ErrInFlight = errors.New("migrate: already being migrated")

// guardWait bounds how long a new migration waits for a guard that is
// still putting the host right after an interrupted one.
const guardWait = 3 * time.Minute

// lockMigration takes the lock for key (a container ID, or "pid-N"),
// waiting for a guard that holds it, refusing if a migrate-src does.
func lockMigration(ctx context.Context, workDir, key string, me lockHolder, waiting func(lockHolder)) (*os.File, error) {
	dir := filepath.Join(workDir, locksDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	sweepLocks(dir, key)
	path := filepath.Join(dir, key+".lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(guardWait)
	told := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil && !isNamed(f, path) {
			// A sweep removed the file between our open and our lock: the
			// lock is the file now at path.
			f.Close()
			if f, err = os.OpenFile(path, os.O_CREATE|os.O_RDWR|unix.O_NOFOLLOW, 0o600); err != nil {
				return nil, err
			}
			continue
		}
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("migrate: lock %s: %w", f.Name(), err)
		}
		h := readHolder(f)
		// A guard finishes within its bounds, and a migrate-src that
		// just ended leaves the lock to its guard, which lets go at once.
		handingOver := h.Role == roleSource && !processAlive(h.Pid)
		if (h.Role != roleGuard && !handingOver) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("%w by %s (pid %d)%s since %s: wait for it to finish or stop it",
				ErrInFlight, h.Role, h.Pid, toWhere(h.Destination), h.Since.Local().Format(time.TimeOnly))
		}
		if !told && waiting != nil {
			waiting(h)
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err := writeHolder(f, me); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// isNamed says whether path names the open file f.
func isNamed(f *os.File, path string) bool {
	var held, named unix.Stat_t
	return unix.Fstat(int(f.Fd()), &held) == nil && unix.Lstat(path, &named) == nil &&
		held.Dev == named.Dev && held.Ino == named.Ino
}

// sweepLocks removes the lock files in dir that nobody holds (but key's,
// about to be taken), so that one file per container ever migrated does
// not pile up. One written in the last minute stays: its taker may be
// between opening and locking it (and would, finding it gone, take the
// new one anyway).
func sweepLocks(dir, key string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".lock") || name == key+".lock" || !e.Type().IsRegular() {
			continue
		}
		if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < time.Minute {
			continue
		}
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOFOLLOW, 0)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil && isNamed(f, path) {
			os.Remove(path)
		}
		f.Close()
	}
}

const (
	roleSource = "migrate-src"
	roleGuard  = "guard"
)

func processAlive(pid int) bool {
	f := statFields(pid)
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

func toWhere(dest string) string {
	if dest == "" {
		return ""
	}
	return " to " + dest
}

func readHolder(f *os.File) lockHolder {
	var h lockHolder
	b := make([]byte, 4096)
	n, _ := f.ReadAt(b, 0)
	if json.Unmarshal(b[:n], &h) != nil || h.Role == "" {
		h.Role = "another migration"
	}
	return h
}

// writeHolder records who holds the lock (for the refusal's message).
func writeHolder(f *os.File, h lockHolder) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	return err
}

// tryLock takes the lock of key (a container ID) if nobody holds it, and
// returns its release; free is false while a migrate-src or a guard holds
// it. An empty key (a process tree) locks nothing.
func tryLock(workDir, key string) (release func(), free bool) {
	if key == "" {
		return func() {}, true
	}
	f, err := os.OpenFile(filepath.Join(workDir, locksDirName, key+".lock"), os.O_RDWR|unix.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return func() {}, true
	}
	if err != nil {
		return func() {}, false
	}
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		f.Close()
		return func() {}, false
	}
	return func() { f.Close() }, true
}
