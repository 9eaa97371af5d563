package criu

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/stats"
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

// A stats-restore file from a peer that go-criu's reader cannot take (it
// indexes before checking lengths) gives "no figures", never a panic.
func TestRestoreStatsOfSurvivesMalformedFiles(t *testing.T) {
	magic := binary.LittleEndian.AppendUint32(nil, stats.ImgServiceMagic)
	magic = binary.LittleEndian.AppendUint32(magic, stats.StatsMagic)
	for name, data := range map[string][]byte{
		"short":              {1, 2, 3},
		"payload beyond end": binary.LittleEndian.AppendUint32(magic, 1<<30),
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, stats.StatsRestore), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, ok := RestoreStatsOf(dir); ok {
			t.Errorf("%s: figures read from a malformed file", name)
		}
	}
}
