package migrate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLockFilesDoNotPileUp: the lock file of each container ever migrated
// is swept once nobody holds it, while a held one (a guard at work) stays
// and still refuses a second migration of its container.
func TestLockFilesDoNotPileUp(t *testing.T) {
	work := t.TempDir()
	ctx := context.Background()
	me := lockHolder{Pid: os.Getpid(), Role: roleSource, Since: time.Now()}
	held, err := lockMigration(ctx, work, "held", lockHolder{Pid: os.Getpid(), Role: roleSource, Destination: "b:7070", Since: time.Now()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	for _, key := range []string{"a", "b", "c"} {
		f, err := lockMigration(ctx, work, key, me, nil)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	dir := filepath.Join(work, locksDirName)
	old := time.Now().Add(-2 * time.Minute)
	for _, key := range []string{"held", "a", "b"} {
		if err := os.Chtimes(filepath.Join(dir, key+".lock"), old, old); err != nil {
			t.Fatal(err)
		}
	}
	f, err := lockMigration(ctx, work, "d", me, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	ents, _ := os.ReadDir(dir)
	if got := entryNamesOf(ents); got != "c.lock d.lock held.lock" {
		t.Fatalf("lock files after a sweep: %s (want the recent ones and the held one)", got)
	}
	// held's file was old but held: a second migration is still refused.
	if _, err := lockMigration(ctx, work, "held", me, nil); !errors.Is(err, ErrInFlight) {
		t.Fatalf("second migration of a held container: %v", err)
	}
}

// TestLockFileIdentity: isNamed, which makes a migration that locked a
// file a sweep removed meanwhile take the file now at the path, tells the
// file at the path from a removed or replaced one.
func TestLockFileIdentity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	old, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if !isNamed(old, path) {
		t.Fatal("the file at its path not named")
	}
	os.Remove(path)
	if isNamed(old, path) {
		t.Fatal("a removed file still named")
	}
	replaced, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer replaced.Close()
	if isNamed(old, path) || !isNamed(replaced, path) {
		t.Fatal("a replaced file taken for the new one")
	}
}

func entryNamesOf(ents []os.DirEntry) string {
	s := ""
	for i, e := range ents {
		if i > 0 {
			s += " "
		}
		s += e.Name()
	}
	return s
}

// TestTryLockDefersToTheHolder: while a migration (or its guard) holds a
// container's lock, tryLock leaves it be; once let go, or for a container
// never locked, it takes it.
func TestTryLockDefersToTheHolder(t *testing.T) {
	work := t.TempDir()
	held, err := lockMigration(context.Background(), work, "c1", lockHolder{Pid: os.Getpid(), Role: roleGuard, Since: time.Now()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, free := tryLock(work, "c1"); free {
		t.Fatal("tryLock took a lock a guard holds")
	}
	held.Close()
	release, free := tryLock(work, "c1")
	if !free {
		t.Fatal("tryLock refused a lock nobody holds")
	}
	if _, again := tryLock(work, "c1"); again {
		t.Fatal("tryLock took a lock it holds itself a second time")
	}
	release()
	if _, free := tryLock(work, "never-locked"); !free {
		t.Fatal("tryLock refused a container never locked")
	}
}
