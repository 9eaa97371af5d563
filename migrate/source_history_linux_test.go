package migrate

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockmove/dockmove/protocol"
)

// TestPredictFreezeFromFakeHistory: a fake history of migrations whose
// freezes are 800 ms plus 5 ms per MiB dumped (with noise) predicts a 64
// MiB container's freeze near 1120 ms; migrations of another strategy
// do not count; those to the named destination are preferred once there
// are three; an empty history gives no prediction and says so.
func TestPredictFreezeFromFakeHistory(t *testing.T) {
	const mib = 1 << 20
	var hist []historyRecord
	add := func(dst string, s protocol.Strategy, m int64, noise float64) {
		moving := time.Duration(float64(5*time.Millisecond) * float64(m) / mib)
		hist = append(hist, historyRecord{Destination: dst, Strategy: s, Memory: m, Moving: moving,
			Freeze: time.Duration(noise * float64(800*time.Millisecond+moving))})
	}
	for i, m := range []int64{16, 32, 128, 256, 64, 16} {
		add("b:7070", protocol.StrategyStopAndCopy, m*mib, 1+0.1*float64(i%3-1))
		add("b:7070", protocol.StrategyLazy, m*mib, 0.3) // far faster: must not pull the prediction down
	}
	p := predictFreeze(hist, protocol.StrategyStopAndCopy, "b:7070", 64*mib)
	if want := 1120 * time.Millisecond; p.Freeze < want*9/10 || p.Freeze > want*11/10 {
		t.Fatalf("predicted %v, want about %v (%s)", p.Freeze, want, p.Basis)
	}
	if !strings.Contains(p.Basis, "last 6 stop-and-copy") || !strings.Contains(p.Basis, "to b:7070") {
		t.Fatalf("basis %q", p.Basis)
	}

	// Another destination with three of its own, each twice as slow.
	for _, m := range []int64{32, 64, 128} {
		add("c:7070", protocol.StrategyStopAndCopy, m*mib, 2)
	}
	if p := predictFreeze(hist, protocol.StrategyStopAndCopy, "c:7070", 64*mib); p.Freeze < 2000*time.Millisecond || !strings.Contains(p.Basis, "to c:7070") {
		t.Fatalf("prediction for c: %v (%s)", p.Freeze, p.Basis)
	}
	// A destination with none of its own: all of them.
	if p := predictFreeze(hist, protocol.StrategyStopAndCopy, "d:7070", 64*mib); p.Freeze == 0 || !strings.Contains(p.Basis, "to any destination") {
		t.Fatalf("prediction for d: %v (%s)", p.Freeze, p.Basis)
	}
	if p := predictFreeze(hist, protocol.StrategyPrecopy, "b:7070", 64*mib); p.Freeze != 0 || !strings.Contains(p.Basis, "no precopy migration") {
		t.Fatalf("prediction without history: %v (%s)", p.Freeze, p.Basis)
	}

	// What the lab's host1 holds: mostly tiny containers (their dump's
	// fixed cost is most of it: a per-byte rate from them alone is
	// absurd), a few of 64 MiB, and two freak freezes of a loaded host.
	var lab []historyRecord
	for i := range 20 {
		r := historyRecord{Destination: "h2", Strategy: protocol.StrategyStopAndCopy, Memory: 600 << 10,
			Freeze: 1600*time.Millisecond + time.Duration(i%4)*20*time.Millisecond, Moving: 200 * time.Millisecond}
		switch i % 7 {
		case 3:
			r.Memory, r.Freeze, r.Moving = 64*mib, 1700*time.Millisecond, 450*time.Millisecond
		case 5:
			r.Freeze = 30 * time.Second
		}
		lab = append(lab, r)
	}
	if p := predictFreeze(lab, protocol.StrategyStopAndCopy, "h2", 68*mib); p.Freeze < 1500*time.Millisecond || p.Freeze > 2000*time.Millisecond {
		t.Fatalf("prediction for 68 MiB from the lab's history: %v, want about 1.7 s (%s)", p.Freeze, p.Basis)
	}
}

// TestHistoryKeptBoundedAndWhole: records appended by concurrent writers
// are all kept (none lost or torn) until the file is cut back to the most
// recent historyKeep, and a damaged line is skipped.
func TestHistoryKeptBoundedAndWhole(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				rec := historyRecord{Destination: fmt.Sprintf("w%d", w), Strategy: protocol.StrategyLazy, Memory: int64(i), Freeze: time.Duration(i + 1)}
				if err := recordHistory(dir, rec); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got := len(readHistory(dir)); got != 200 {
		t.Fatalf("%d records after 200 writes", got)
	}
	f, err := os.OpenFile(filepath.Join(dir, historyFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("{not json\n")
	f.Close()
	for i := range 2*historyKeep - 200 + 1 {
		if err := recordHistory(dir, historyRecord{Destination: "last", Strategy: protocol.StrategyLazy, Memory: int64(i), Freeze: 1}); err != nil {
			t.Fatal(err)
		}
	}
	recs := readHistory(dir)
	if len(recs) != historyKeep || recs[len(recs)-1].Destination != "last" || recs[len(recs)-1].Memory != 2*historyKeep-200 {
		t.Fatalf("after the cut: %d records, last %+v", len(recs), recs[len(recs)-1])
	}
}
