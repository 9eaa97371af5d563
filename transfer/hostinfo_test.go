package transfer

import (
	"strings"
	"testing"
)

func TestCleanVersionKeepsRealVersionsAndDefusesTheRest(t *testing.T) {
	for in, want := range map[string]string{
		"28.5.2+dfsg4":           "28.5.2+dfsg4",
		"2.1.9~ds1":              "2.1.9~ds1",
		"6.18.44-fc-v595":        "6.18.44-fc-v595",
		"1.1.5+ds1-1+deb12u1":    "1.1.5+ds1-1+deb12u1",
		"v1.6.20 (git 2806fc1)":  "v1.6.20__git_2806fc1_",
		"evil\nline":             "evil_line",
		strings.Repeat("9", 100): strings.Repeat("9", 64),
	} {
		got := CleanVersion(in)
		if got != want {
			t.Errorf("CleanVersion(%q) = %q, want %q", in, got, want)
		}
		if err := (HostInfo{Docker: got}).validate(); err != nil {
			t.Errorf("cleaned %q does not validate: %v", got, err)
		}
	}
}

func TestHelloRefusesHostileHostInfo(t *testing.T) {
	for _, h := range []HostInfo{
		{Docker: "28\n0"}, {Kernel: strings.Repeat("x", 65)}, {Runc: "1.3 <script>"}, {Cgroup: 3}, {Cgroup: -1},
	} {
		m := hello(RoleSource)
		m.Host = h
		if err := m.Validate(); err == nil {
			t.Errorf("host %+v accepted", h)
		}
	}
	m := hello(RoleSource)
	m.Host = HostInfo{Docker: "28.5.2", Containerd: "2.1.9", Runc: "1.3.6", Kernel: "6.18.44", Cgroup: 2}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := m.Host.String(), "Docker 28.5.2, containerd 2.1.9, runc 1.3.6, kernel 6.18.44, cgroup v2"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}
