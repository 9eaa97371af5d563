package bench

import (
	"errors"
	"github.com/dockmove/dockmove/internal/resp"
	"slices"
	"testing"
)

func TestAgentArgs(t *testing.T) {
	cases := map[string][]string{
		StopAndCopy:      {"--strategy", "stop-and-copy"},
		StopAndCopyLocal: {"--strategy", "stop-and-copy", "--local-pages"},
		Hybrid:           {"--strategy", "hybrid"},
		Precopy:          {"--strategy", "precopy"},
		PrecopyPHaul:     {"--strategy", "precopy", "--precopy-policy", "phaul"},
		PrecopyLXD:       {"--strategy", "precopy", "--precopy-policy", "lxd"},
	}
	for s, want := range cases {
		if got := agentArgs(s); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", s, got, want)
		}
	}
	if got := containerSafe(PrecopyPHaul); got != "precopy-phaul" {
		t.Errorf("container name part %q", got)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Bin, ok.Out = "bin", "out"
	ok.Strategies = append(ok.Strategies, PrecopyStrategies...)
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, mutate := range []func(*Config){
		func(c *Config) { c.Strategies = []string{"precopy:greedy"} },
		func(c *Config) { c.Reps = 0 },
		func(c *Config) { c.Hosts = []string{"host1", "host1"} },
		func(c *Config) { c.CaseTimeout = 0 },
		func(c *Config) { c.SizesMiB = []int{0} },
		func(c *Config) { c.Out = "" },
	} {
		c := ok
		c.Strategies = slices.Clone(ok.Strategies)
		mutate(&c)
		if c.Validate() == nil {
			t.Errorf("accepted %+v", c)
		}
	}
}

func TestLeftoverCheckpointNamesOnlyDockersUploadDefect(t *testing.T) {
	const d = "sha256:656fb71ac3593525bce7e0dc3130402db40892a1ab3cc8b4bff8f6216622b36c"
	for _, c := range []struct {
		msg  string
		want string
	}{
		{"docker start --checkpoint cp x on host1: exit status 1: Error response from daemon: failed to upload checkpoint to containerd: commit failed: content " + d + ": already exists", d},
		{"Error response from daemon: failed to upload checkpoint to containerd: connection refused", ""},
		{"Error response from daemon: Conflict. The container name \"/x\" is already in use: already exists", ""},
		{"Error response from daemon: failed to upload checkpoint to containerd: commit failed: content sha256:bfd0: already exists", ""},
	} {
		if got := leftoverCheckpoint(errors.New(c.msg)); got != c.want {
			t.Errorf("leftoverCheckpoint(%q) = %q, want %q", c.msg, got, c.want)
		}
	}
	if got := leftoverCheckpoint(nil); got != "" {
		t.Errorf("leftoverCheckpoint(nil) = %q", got)
	}
}

func TestRedisWritesHoldsWithFakeWrites(t *testing.T) {
	w := &redisWrites{last: map[int]string{1: writtenValue(1, 7)}, inflight: map[int]string{1: writtenValue(1, 9), 2: writtenValue(2, 3)}}
	for _, c := range []struct {
		k    int
		got  string
		want bool
	}{
		{0, resp.Value(0), true},       // never written: its loaded value
		{0, writtenValue(0, 1), false}, // a value nobody sent
		{1, writtenValue(1, 7), true},  // the last acknowledged
		{1, writtenValue(1, 9), true},  // sent, not acknowledged: may have applied
		{1, resp.Value(1), false},      // overwritten, acknowledged: lost
		{2, resp.Value(2), true},       // the in-flight write may not have applied
		{2, writtenValue(2, 3), true},
	} {
		if got := w.holds(c.k, c.got); got != c.want {
			t.Errorf("holds(%d, %.12q...) = %v, want %v", c.k, c.got, got, c.want)
		}
	}
}
