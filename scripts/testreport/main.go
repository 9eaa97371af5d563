// Command testreport reads `go test -json` on stdin and prints what a
// person reading CI wants: each package's result, the whole output of
// every failed test, and the slowest top-level tests (where CI's time
// goes). It exits 1 if anything failed or the stream ended early.
//
//	go test -json ./... | go run ./scripts/testreport -slowest 25
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of test2json's output.
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

type result struct {
	pkg, test string
	elapsed   float64
}

func main() {
	slowest := flag.Int("slowest", 20, "how many of the slowest top-level tests to list")
	flag.Parse()
	os.Exit(report(os.Stdin, os.Stdout, *slowest))
}

func report(in io.Reader, out io.Writer, slowest int) int {
	outputs := map[string]*strings.Builder{} // package + test -> its output
	var tests []result
	failed, started, ended := 0, map[string]bool{}, map[string]bool{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// Not test2json (a build error, say): show it as it came.
			fmt.Fprintln(out, sc.Text())
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "build-output":
			// A package that does not build: the compiler's words.
			fmt.Fprint(out, e.Output)
		case "start":
			started[e.Package] = true
		case "output":
			b := outputs[key]
			if b == nil {
				b = &strings.Builder{}
				outputs[key] = b
			}
			b.WriteString(e.Output)
		case "pass", "fail", "skip":
			if e.Test == "" {
				ended[e.Package] = true
				if e.Action == "fail" {
					failed++
					// The package's own output: a panic, a build failure, a timeout.
					if b := outputs[key]; b != nil {
						fmt.Fprint(out, b.String())
					}
				}
				fmt.Fprintf(out, "%-4s %s %.1fs\n", strings.ToUpper(e.Action), e.Package, e.Elapsed)
				continue
			}
			if e.Action == "fail" && !strings.Contains(e.Test, "/") {
				failed++
				fmt.Fprintf(out, "--- FAIL: %s (%s, %.1fs)\n", e.Test, e.Package, e.Elapsed)
				var keys []string
				for k := range outputs {
					if k == key || strings.HasPrefix(k, key+"/") {
						keys = append(keys, k)
					}
				}
				sort.Strings(keys)
				for _, k := range keys {
					fmt.Fprint(out, outputs[k].String())
				}
			}
			if !strings.Contains(e.Test, "/") {
				// Subtests' output is kept until their test ends.
				tests = append(tests, result{e.Package, e.Test, e.Elapsed})
				for k := range outputs {
					if k == key || strings.HasPrefix(k, key+"/") {
						delete(outputs, k)
					}
				}
			}
		}
	}
	for pkg := range started {
		if !ended[pkg] {
			failed++
			fmt.Fprintf(out, "FAIL %s: its output ended before its result\n", pkg)
		}
	}
	sort.Slice(tests, func(i, j int) bool { return tests[i].elapsed > tests[j].elapsed })
	if len(tests) > slowest {
		tests = tests[:slowest]
	}
	fmt.Fprintf(out, "slowest tests:\n")
	for _, t := range tests {
		fmt.Fprintf(out, "  %7.1fs %s %s\n", t.elapsed, t.test, strings.TrimPrefix(t.pkg, "github.com/dockmove/dockmove/"))
	}
	if failed > 0 || sc.Err() != nil {
		return 1
	}
	return 0
}
