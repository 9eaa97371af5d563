//go:build unix

package events

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestStreamWritesStagesAndEnd writes a stream to a file and reads it back.
func TestStreamWritesStagesAndEnd(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.Stage("dump", "", "ab12")
	s.End(errors.New("refused"))
	s.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var first, last Event
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &first) != nil || json.Unmarshal([]byte(lines[1]), &last) != nil {
		t.Fatalf("stream: %q", data)
	}
	if first.Event != "stage" || first.Stage != "dump" || first.MigrationID != "ab12" || first.Pid != os.Getpid() ||
		last.Event != "end" || last.OK || last.Error != "refused" {
		t.Fatalf("events %+v, %+v", first, last)
	}
}

// TestOpenInheritedDescriptor names an inherited descriptor as /dev/fd/N,
// which works without /dev/fd mounted; a closed one is refused.
func TestOpenInheritedDescriptor(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	fd, err := syscall.Dup(int(w.Fd())) // the stream owns its own descriptor
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open("/dev/fd/" + strconv.Itoa(fd))
	if err != nil {
		t.Fatal(err)
	}
	s.End(nil)
	s.Close()
	var ev Event
	if err := json.NewDecoder(r).Decode(&ev); err != nil || ev.Event != "end" || !ev.OK {
		t.Fatalf("%+v, %v", ev, err)
	}
	if _, err := Open("/dev/fd/987"); err == nil {
		t.Fatal("opened a descriptor that is not open")
	}
}
