package criu

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	gocriu "github.com/checkpoint-restore/go-criu/v7"
	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"github.com/checkpoint-restore/go-criu/v7/stats"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// DumpSpec is what a container dump needs to know about the container.
type DumpSpec struct {
	Pid            int      // the container's init process, as the host sees it
	Root           string   // the container's root filesystem (overlay merged dir)
	ExternalMounts []string // mount points inside the container bound from the host
	FreezeCgroup   string   // the container's freezer cgroup directory ("" to use ptrace)
	TTY            bool     // the container has a console (docker run -t)
	// LazyPages leaves anonymous memory out of the images and serves it,
	// after the post-dump notification, from a page server on PageServer
	// (host:port) until the destination has it all.
	LazyPages  bool
	PageServer string
	// PagesTo, for a dump that is not lazy, is a connected stream socket
	// to a page server (StartPageServer at its other end, directly or
	// through a tunnel): the pages go there as they are dumped, not into
	// the images.
	PagesTo *os.File
	// Parent is the previous pre-dump's image directory, relative to this
	// one ("../round-2"): pages unchanged since then are not written.
	// Requires dirty-memory tracking (soft-dirty).
	Parent string
	// TrackMem has the kernel track the pages dirtied after this dump, so
	// a later dump with this one as Parent writes only those.
	TrackMem bool
	// Process dumps a plain process tree rather than a container: no root
	// filesystem, namespaces, cgroups or external mounts of its own.
	Process bool
	// Netns is the inode of the container's network namespace. The
	// namespace is dumped as external (key restoreruntime.NetnsKey, "extRootNetNS",
	// runc's convention): the destination provides the namespace and its
	// Docker wires it. Zero leaves it empty instead (CRIU makes a new one
	// on restore).
	Netns uint64
	// GhostLimit is the largest deleted-but-open file whose content CRIU
	// copies into the images (bytes; 0: CRIU's default, 1 MiB).
	GhostLimit uint32
	// NFTablesLock locks the tree's network namespace with an nftables
	// table (CRIU's "inet CRIU-<run id>") instead of iptables rules: CRIU
	// sets it in its own process, where iptables costs two programs at
	// the dump, and the restore, which unlocks the way the dump locked,
	// runs none instead of seven (about 75 ms of the freeze here). Only
	// for an external network namespace (Netns): the restore then never
	// locks, so a destination whose CRIU lacks nftables loses nothing.
	// UnlockNetwork removes either kind.
	NFTablesLock bool
}

// NetnsKey is the key an external network namespace is dumped under; runc
// passes the namespace named in a bundle under the same key on restore.
const NetnsKey = "extRootNetNS"

// DumpOpts builds CRIU options for dumping a Docker container so that runc
// can restore the images on another host:
// the host's bind mounts and the network namespace are external (the
// destination provides a namespace for its Docker to wire), TCP connections
// and file locks are dumped, cgroups are managed softly.
func DumpOpts(s DumpSpec, imagesFd int) *rpc.CriuOpts {
	opts := &rpc.CriuOpts{
		ImagesDirFd:     proto.Int32(int32(imagesFd)),
		Pid:             proto.Int32(int32(s.Pid)),
		LogFile:         proto.String(DumpLog),
		LogLevel:        proto.Int32(4),
		TcpEstablished:  proto.Bool(true),
		ExtUnixSk:       proto.Bool(true),
		FileLocks:       proto.Bool(true),
		OrphanPtsMaster: proto.Bool(s.TTY),
	}
	if !s.Process {
		opts.Root = proto.String(s.Root)
		opts.ManageCgroups = proto.Bool(true)
		opts.ManageCgroupsMode = rpc.CriuCgMode_SOFT.Enum()
		if s.Netns != 0 {
			opts.External = append(opts.External, fmt.Sprintf("net[%d]:%s", s.Netns, NetnsKey))
			if s.NFTablesLock {
				opts.NetworkLock = rpc.CriuNetworkLockMethod_NFTABLES.Enum()
			}
		} else {
			opts.EmptyNs = proto.Uint32(unix.CLONE_NEWNET)
		}
	}
	if s.TrackMem {
		opts.TrackMem = proto.Bool(true)
	}
	if s.GhostLimit > 0 {
		opts.GhostLimit = proto.Uint32(s.GhostLimit)
	}
	if s.Parent != "" {
		opts.ParentImg = proto.String(s.Parent)
	}
	if s.FreezeCgroup != "" {
		opts.FreezeCgroup = proto.String(s.FreezeCgroup)
	}
	if s.LazyPages {
		host, port, _ := net.SplitHostPort(s.PageServer)
		p, _ := strconv.Atoi(port)
		opts.LazyPages = proto.Bool(true)
		opts.Ps = &rpc.CriuPageServerInfo{Address: proto.String(host), Port: proto.Int32(int32(p))}
	}
	mounts := append([]string(nil), s.ExternalMounts...)
	sort.Strings(mounts)
	for _, m := range mounts {
		opts.ExtMnt = append(opts.ExtMnt, &rpc.ExtMountMap{Key: proto.String(m), Val: proto.String(m)})
	}
	return opts
}

// lazyPagesConfig is the CRIU configuration file that binds a lazy dump's
// page server to the host of addr (HOST:PORT).
func lazyPagesConfig(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	return "address " + host + "\n"
}

// Log file names CRIU writes into the images directory.
const (
	DumpLog    = "dump.log"
	RestoreLog = "restore.log"
)

// DumpStats are CRIU's own figures for a dump.
type DumpStats struct {
	FreezingTime time.Duration // time to freeze the tree
	FrozenTime   time.Duration // time the tree was frozen, as CRIU counts it
	MemdumpTime  time.Duration
	MemwriteTime time.Duration
	PagesScanned uint64
	PagesWritten uint64
	PagesLazy    uint64
	// PagesSkipped were unchanged since the parent dump.
	PagesSkipped uint64
}

// DumpHooks are called at CRIU's notifications during a dump.
type DumpHooks struct {
	// PreDump is called just before CRIU freezes the tree. Optional.
	PreDump func()
	// PostDump is called when the images are complete and the tree is
	// frozen. Its error rolls the dump back (CRIU resumes the tree); nil
	// commits (CRIU kills the tree). Required.
	PostDump func() error
}

type dumpNotify struct {
	gocriu.NoNotify
	hooks DumpHooks
}

func (n dumpNotify) PreDump() error {
	if n.hooks.PreDump != nil {
		n.hooks.PreDump()
	}
	return nil
}

func (n dumpNotify) PostDump() error { return n.hooks.PostDump() }

// Dump checkpoints the tree described by s into dir with the criu binary at
// path ("" for PATH), calling hooks.PostDump while the tree is frozen and
// the images are complete.
func Dump(path, dir string, s DumpSpec, hooks DumpHooks) (DumpStats, error) {
	d, err := os.Open(dir)
	if err != nil {
		return DumpStats{}, err
	}
	defer d.Close()
	if err := writeDescriptors(s.Pid, dir); err != nil {
		return DumpStats{}, err
	}
	c := gocriu.MakeCriu()
	if path != "" {
		c.SetCriuPath(path)
	}
	opts := DumpOpts(s, int(d.Fd()))
	if s.PagesTo != nil && !s.LazyPages {
		// CRIU takes the socket by number, so it must inherit it: a
		// duplicate without close-on-exec, for the time of the dump.
		fd, err := unix.Dup(int(s.PagesTo.Fd()))
		if err != nil {
			return DumpStats{}, os.NewSyscallError("dup", err)
		}
		defer unix.Close(fd)
		opts.Ps = &rpc.CriuPageServerInfo{Fd: proto.Int32(int32(fd))}
	}
	if s.LazyPages {
		// Over RPC, CRIU ignores the page server's address in a lazy dump
		// and listens on every interface, where anyone who reaches this
		// host could read the container's memory: a configuration file,
		// which CRIU applies after the RPC's options, binds it to the
		// address asked for.
		conf := dir + ".criu.conf"
		if err := os.WriteFile(conf, []byte(lazyPagesConfig(s.PageServer)), 0o600); err != nil {
			return DumpStats{}, err
		}
		defer os.Remove(conf)
		opts.ConfigFile = proto.String(conf)
	}
	if err := c.Dump(opts, dumpNotify{hooks: hooks}); err != nil {
		return DumpStats{}, NewError("dump", filepath.Join(dir, DumpLog), err)
	}
	return readDumpStats(d), nil
}

// PreDump takes a pre-dump of the tree described by s into dir: its memory
// while it keeps running (frozen only while the pages are collected), with
// the kernel tracking what is dirtied afterwards. s.Parent names the
// previous round.
func PreDump(path, dir string, s DumpSpec) (DumpStats, error) {
	d, err := os.Open(dir)
	if err != nil {
		return DumpStats{}, err
	}
	defer d.Close()
	c := gocriu.MakeCriu()
	if path != "" {
		c.SetCriuPath(path)
	}
	s.TrackMem, s.LazyPages = true, false
	if err := c.PreDump(DumpOpts(s, int(d.Fd())), nil); err != nil && !preDumpDone(dir, err) {
		return DumpStats{}, NewError("pre-dump", filepath.Join(dir, DumpLog), err)
	}
	return readDumpStats(d), nil
}

// preDumpDone tells a successful pre-dump from err. In swrk mode CRIU
// answers a pre-dump, then waits for the next pre-dump or the final dump
// of the same series; go-criu closes the connection instead, and CRIU
// exits with status 255 although the pre-dump succeeded. A failed
// pre-dump answers "operation failed" and never logs its success line.
func preDumpDone(dir string, err error) bool {
	var exit *exec.ExitError
	if !errors.As(err, &exit) || strings.Contains(err.Error(), "operation failed") {
		return false
	}
	log, rerr := os.ReadFile(filepath.Join(dir, DumpLog))
	return rerr == nil && bytes.Contains(log, []byte("Pre-dumping finished successfully"))
}

func readDumpStats(d *os.File) DumpStats {
	st, err := stats.CriuGetDumpStats(d)
	if err != nil {
		return DumpStats{}
	}
	us := func(v uint32) time.Duration { return time.Duration(v) * time.Microsecond }
	return DumpStats{
		FreezingTime: us(st.GetFreezingTime()), FrozenTime: us(st.GetFrozenTime()),
		MemdumpTime: us(st.GetMemdumpTime()), MemwriteTime: us(st.GetMemwriteTime()),
		PagesScanned: st.GetPagesScanned(), PagesWritten: st.GetPagesWritten(), PagesLazy: st.GetPagesLazy(),
		PagesSkipped: st.GetPagesSkippedParent(),
	}
}

// writeDescriptors records where the init process's stdio points, as runc
// does: runc restore uses descriptors.json to re-attach the new container's
// stdio in their place.
func writeDescriptors(pid int, dir string) error {
	var fds []string
	for fd := 0; fd < 3; fd++ {
		t, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
		if err != nil {
			return fmt.Errorf("criu: read stdio of pid %d: %w", pid, err)
		}
		fds = append(fds, t)
	}
	data, err := json.Marshal(fds)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "descriptors.json"), data, 0o600)
}

// CgroupMounts lists the cgroup v1 controller mount points inside the
// mount namespace of pid (binds of host cgroup directories, which CRIU
// must treat as external).
func CgroupMounts(pid int) ([]string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := indexOf(fields, "-")
		if sep < 0 || sep+1 >= len(fields) || len(fields) < 5 {
			continue
		}
		if fields[sep+1] == "cgroup" && strings.HasPrefix(fields[4], "/sys/fs/cgroup/") {
			out = append(out, fields[4])
		}
	}
	return out, sc.Err()
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// FreezerCgroup returns the host path of pid's cgroup v1 freezer directory,
// or "" when there is none (cgroup v2, no freezer).
func FreezerCgroup(pid int) string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && parts[1] == "freezer" {
			dir := filepath.Join("/sys/fs/cgroup/freezer", parts[2])
			if _, err := os.Stat(dir); err == nil {
				return dir
			}
		}
	}
	return ""
}

// RestoreStats are CRIU's own figures for a restore.
type RestoreStats struct {
	PagesRestored uint64
	ForkingMicros uint32
	RestoreMicros uint32
}

// RestoreStatsOf reads the stats-restore file CRIU left in an images
// directory; ok is false when there is none or it does not parse. The
// directory came from a peer: go-criu's reader panics on some malformed
// files, and a panic here would take the whole agent down, so it is
// recovered as "no figures".
func RestoreStatsOf(dir string) (rs RestoreStats, ok bool) {
	defer func() {
		if recover() != nil {
			rs, ok = RestoreStats{}, false
		}
	}()
	d, err := os.Open(dir)
	if err != nil {
		return RestoreStats{}, false
	}
	defer d.Close()
	st, err := stats.CriuGetRestoreStats(d)
	if err != nil {
		return RestoreStats{}, false
	}
	return RestoreStats{PagesRestored: st.GetPagesRestored(), ForkingMicros: st.GetForkingTime(), RestoreMicros: st.GetRestoreTime()}, true
}
