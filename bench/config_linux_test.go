package bench

import (
	"errors"
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

func TestContentRaceRecognisesOnlyDockersUploadRace(t *testing.T) {
	for _, c := range []struct {
		msg  string
		want bool
	}{
		{"docker start --checkpoint cp x on host1: exit status 1: Error response from daemon: failed to upload checkpoint to containerd: commit failed: content sha256:bfd0: already exists", true},
		{"Error response from daemon: failed to upload checkpoint to containerd: connection refused", false},
		{"Error response from daemon: Conflict. The container name \"/x\" is already in use: already exists", false},
	} {
		if got := contentRace(errors.New(c.msg)); got != c.want {
			t.Errorf("contentRace(%q) = %v, want %v", c.msg, got, c.want)
		}
	}
}
