package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteReplacesWhole: the file holds the new content with its mode,
// and no temporary file is left; a write that cannot rename leaves the old
// content and no temporary file.
func TestWriteReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "state.json")
	for _, content := range []string{"old", "new"} {
		if err := Write(path, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil || string(data) != "new" {
		t.Fatalf("content %q, %v", data, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode())
	}
	// A directory in the way: the rename fails.
	blocked := filepath.Join(dir, "sub", "blocked")
	if err := os.MkdirAll(filepath.Join(blocked, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Write(blocked, []byte("lost"), 0o600); err == nil {
		t.Fatal("a write over a non-empty directory succeeded")
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "sub"))
	if len(ents) != 2 {
		t.Fatalf("left in the directory: %v", ents)
	}
}
