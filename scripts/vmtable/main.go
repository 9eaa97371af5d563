// Command vmtable renders the pre-copy policy comparison of the VM tier
// (make bench-vm) as a Markdown table: it reads the VM's console log on
// stdin and takes the JSON record each migration printed after "VMBENCH ".
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// row is predump's vmBenchRow, as it goes on the console.
type row struct {
	Policy        string        `json:"policy"`
	DirtyPerSec   int           `json:"dirty_pages_per_sec"`
	PagesPerRound []uint64      `json:"pages_per_round"`
	FinalPages    uint64        `json:"final_dump_pages"`
	WireBytes     int64         `json:"wire_bytes"`
	Freeze        time.Duration `json:"freeze_ns"`
	Predicted     time.Duration `json:"predicted_freeze_ns"`
	Reason        string        `json:"why_it_stopped"`
}

func main() {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var rows []row
	for sc.Scan() {
		rest, ok := strings.CutPrefix(strings.TrimRight(sc.Text(), "\r"), "VMBENCH ")
		if !ok {
			continue
		}
		var r row
		if err := json.Unmarshal([]byte(rest), &r); err != nil {
			fmt.Fprintf(os.Stderr, "vmtable: a VMBENCH record that is not JSON: %v\n", err)
			os.Exit(1)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "vmtable: %v\n", err)
		os.Exit(1)
	}
	if len(rows) == 0 {
		fmt.Fprintln(os.Stderr, "vmtable: no VMBENCH records in the log (run make bench-vm first)")
		os.Exit(1)
	}
	fmt.Println("| policy | dirty pages/s | rounds | pages written per round | final dump pages | wire (MiB) | freeze (ms) | predicted (ms) | why it stopped |")
	fmt.Println("|---|---:|---:|---|---:|---:|---:|---:|---|")
	for _, r := range rows {
		pages := make([]string, len(r.PagesPerRound))
		for i, p := range r.PagesPerRound {
			pages[i] = fmt.Sprint(p)
		}
		fmt.Printf("| %s | %d | %d | %s | %d | %.1f | %d | %d | %s |\n", r.Policy, r.DirtyPerSec, len(r.PagesPerRound),
			strings.Join(pages, ", "), r.FinalPages, float64(r.WireBytes)/(1<<20), r.Freeze.Milliseconds(),
			r.Predicted.Milliseconds(), strings.ReplaceAll(r.Reason, "|", "/"))
	}
}
