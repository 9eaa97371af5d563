package migrate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// This test process holds a deleted 2 MiB file open: it is found with its
// size, counted once though open twice, and refused under a 1 MiB limit
// with its name, accepted under a 4 MiB one. Real files and /proc.
func TestDeletedOpenFilesAreFoundAndLimited(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rotated.log")
	if err := os.WriteFile(path, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	var found []ghostFile
	for _, g := range deletedOpenFiles(os.Getpid()) {
		if g.path == path {
			found = append(found, g)
		}
	}
	if len(found) != 1 || found[0].size != 2<<20 {
		t.Fatalf("found %+v, want the file once with 2 MiB", found)
	}
	if ghostBytes(os.Getpid()) < 2<<20 {
		t.Fatal("ghost bytes do not count the file")
	}
	err := checkGhosts(os.Getpid(), 1<<20)
	if !errors.Is(err, ErrCannotMove) || !strings.Contains(err.Error(), path) {
		t.Fatalf("under a 1 MiB limit: %v", err)
	}
	if err := checkGhosts(os.Getpid(), 4<<20); err != nil && strings.Contains(err.Error(), path) {
		t.Fatalf("under a 4 MiB limit: %v", err)
	}
}
