//go:build linux

package main

import (
	"net"
	"strings"
	"testing"
)

// A --metrics-listen address migrate-dst cannot serve on fails at start,
// naming the flag, before the agent checks this host (neither CRIU nor
// Docker is reached): malformed, a command line error; taken, a failure.
func TestMetricsListenFailsAtStart(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		name string
		addr string
		code int
		want string
	}{
		{"no port", "nonsense", 2, `--metrics-listen "nonsense": want HOST:PORT`},
		{"taken", taken.Addr().String(), 1, "--metrics-listen \"" + taken.Addr().String() + "\": listen tcp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runDst(t, "--insecure-plaintext-no-auth", "--listen", "127.0.0.1:0", "--metrics-listen", tc.addr)
			if code != tc.code || out != "" || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d and %q", code, out, errOut, tc.code, tc.want)
			}
		})
	}
}

// Without --metrics-listen nothing is served and nothing observes.
func TestNoMetricsByDefault(t *testing.T) {
	obs, err := serveMetrics(t.Context(), "", nil)
	if obs != nil || err != nil {
		t.Fatalf("got %v, %v; want nothing", obs, err)
	}
}
