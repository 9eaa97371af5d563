package criu

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestDumpOptsForDockerContainers(t *testing.T) {
	tests := []struct {
		name  string
		spec  DumpSpec
		check func(t *testing.T, s DumpSpec)
	}{
		{"stop-and-copy", DumpSpec{Pid: 7, Root: "/merged", ExternalMounts: []string{"/etc/hosts", "/etc/hostname"}, FreezeCgroup: "/sys/fs/cgroup/freezer/docker/x"}, func(t *testing.T, s DumpSpec) {
			o := DumpOpts(s, 3)
			if o.GetPid() != 7 || o.GetRoot() != "/merged" || o.GetImagesDirFd() != 3 || o.GetFreezeCgroup() != s.FreezeCgroup {
				t.Fatalf("basic fields: %v", o)
			}
			if o.GetEmptyNs() != unix.CLONE_NEWNET || !o.GetTcpEstablished() || !o.GetExtUnixSk() || !o.GetFileLocks() || !o.GetManageCgroups() {
				t.Fatalf("runc-compatible flags missing: %v", o)
			}
			if o.GetLazyPages() || o.Ps != nil || o.GetOrphanPtsMaster() || o.GetLeaveRunning() {
				t.Fatalf("unexpected flags: %v", o)
			}
			if len(o.ExtMnt) != 2 || o.ExtMnt[0].GetKey() != "/etc/hostname" || o.ExtMnt[0].GetVal() != "/etc/hostname" {
				t.Fatalf("external mounts (sorted, key=val): %v", o.ExtMnt)
			}
		}},
		{"external-netns", DumpSpec{Pid: 7, Netns: 4026532481}, func(t *testing.T, s DumpSpec) {
			// runc's convention: the destination's runtime hands CRIU the
			// namespace under this key (Docker 26+ wires it after create).
			o := DumpOpts(s, 3)
			if o.GetEmptyNs() != 0 || len(o.External) != 1 || o.External[0] != "net[4026532481]:extRootNetNS" {
				t.Fatalf("network namespace not external: empty_ns %#x, external %v", o.GetEmptyNs(), o.External)
			}
		}},
		{"tty", DumpSpec{Pid: 7, TTY: true}, func(t *testing.T, s DumpSpec) {
			if !DumpOpts(s, 3).GetOrphanPtsMaster() {
				t.Fatal("TTY dump without orphan pts master")
			}
		}},
		{"lazy", DumpSpec{Pid: 7, LazyPages: true, PageServer: "127.0.0.1:4567"}, func(t *testing.T, s DumpSpec) {
			o := DumpOpts(s, 3)
			if !o.GetLazyPages() || o.Ps.GetAddress() != "127.0.0.1" || o.Ps.GetPort() != 4567 {
				t.Fatalf("lazy options: %v", o)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, tt.spec) })
	}
}
