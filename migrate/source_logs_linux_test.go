package migrate

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dockmove/dockmove/protocol"
)

// Before the freeze the log files ship whole; frozen, only what the
// current log gained since, or, when Docker rotated it meanwhile, the whole
// set again. Real files, rotated as Docker rotates them (rename, new file).
func TestLogShipperSendsTheTailOrTheSetAgain(t *testing.T) {
	dir := t.TempDir()
	current := filepath.Join(dir, "c-json.log")
	write := func(p, data string) {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(data)
		f.Close()
	}
	ship := func(l *logShipper, tail bool) map[string]string {
		out := t.TempDir()
		if err := l.files(out, tail); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		ents, _ := os.ReadDir(out)
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(out, e.Name()))
			got[e.Name()] = string(b)
		}
		return got
	}
	same := func(what string, got, want map[string]string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%s: %v, want %v", what, got, want)
			}
		}
	}
	write(current+".1", "0\n")
	write(current, "1\n2\n")
	l := &logShipper{driver: protocol.LogsJSONFile, current: current}
	same("before the freeze", ship(l, false), map[string]string{"current": "1\n2\n", "rotated-1": "0\n"})
	write(current, "3\n")
	same("the tail", ship(l, true), map[string]string{"tail": "3\n"})

	// Rotated after the first shipment: the set again.
	l = &logShipper{driver: protocol.LogsJSONFile, current: current}
	ship(l, false)
	if err := os.Rename(current+".1", current+".2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(current, current+".1"); err != nil {
		t.Fatal(err)
	}
	write(current, "4\n")
	same("after a rotation", ship(l, true), map[string]string{"current": "4\n", "rotated-1": "1\n2\n3\n", "rotated-2": "0\n"})
}
