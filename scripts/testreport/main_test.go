package main

import (
	"strings"
	"testing"
)

func TestReportShowsFailuresAndTheSlowestWithFakeEvents(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"start","Package":"p"}`,
		`{"Action":"output","Package":"p","Test":"TestSlow","Output":"=== RUN   TestSlow\n"}`,
		`{"Action":"pass","Package":"p","Test":"TestSlow","Elapsed":42.5}`,
		`{"Action":"output","Package":"p","Test":"TestBad/sub","Output":"    bad_test.go:9: the reason\n"}`,
		`{"Action":"fail","Package":"p","Test":"TestBad/sub","Elapsed":1}`,
		`{"Action":"fail","Package":"p","Test":"TestBad","Elapsed":1.5}`,
		`{"Action":"fail","Package":"p","Elapsed":44}`,
		`{"Action":"start","Package":"q"}`,
		`{"Action":"output","Package":"q","Test":"TestCut","Output":"=== RUN   TestCut\n"}`,
	}, "\n")
	var out strings.Builder
	if code := report(strings.NewReader(in), &out, 1); code != 1 {
		t.Errorf("exit %d with failures", code)
	}
	got := out.String()
	for _, want := range []string{"--- FAIL: TestBad (p, 1.5s)", "bad_test.go:9: the reason", "FAIL p 44.0s", "FAIL q: its output ended", "42.5s TestSlow p"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "TestBad p") {
		t.Errorf("the slowest list has more than asked:\n%s", got)
	}

	out.Reset()
	if code := report(strings.NewReader(`{"Action":"start","Package":"p"}`+"\n"+`{"Action":"pass","Package":"p","Elapsed":1}`), &out, 5); code != 0 {
		t.Errorf("exit %d when all passed:\n%s", code, out.String())
	}
}
