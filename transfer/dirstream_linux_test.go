package transfer

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dockmove/dockmove/internal/lab/labtest"
)

// makeTree fills dir with what directory streams must carry: nested
// directories, files around the chunk size, compressible and random data,
// modes, a relative symlink, a hard link and a user xattr.
func makeTree(t *testing.T, dir string) {
	t.Helper()
	write := func(rel string, data []byte, mode os.FileMode) {
		full := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, mode); err != nil {
			t.Fatal(err)
		}
	}
	random := make([]byte, 3<<20+7)
	rand.Read(random)
	write("empty", nil, 0o644)
	write("one", []byte{1}, 0o600)
	write("a/b/c/chunk-1", bytes.Repeat([]byte("x"), 512<<10-1), 0o640)
	write("a/b/chunk+1", bytes.Repeat([]byte("y"), 512<<10+1), 0o644)
	write("pages-1.img", pageLike(5<<20), 0o600)
	write("random.bin", random, 0o755)
	write("setuid", []byte("#!/bin/sh\n"), 0o755|os.ModeSetuid)
	if err := os.Symlink("../random.bin", filepath.Join(dir, "a", "rel-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "one"), filepath.Join(dir, "a", "one-again")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(dir, "one"), "user.dockmove", []byte("kept"), 0); err != nil {
		t.Logf("no user xattrs on this file system: %v", err)
	}
	if err := os.Chmod(filepath.Join(dir, "a", "b"), 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(filepath.Join(dir, "a", "b"), 0o755) })
}

// treePolicy accepts the relative symlink and the user xattr makeTree sets.
func treePolicy() Policy {
	p := ImagePolicy()
	p.Symlinks, p.Xattrs = true, []string{"user."}
	return p
}

// pageLike returns memory-image-like data: zero pages, repeated pages and
// random pages, the mix CRIU's pages-*.img files hold.
func pageLike(size int) []byte {
	out := make([]byte, size)
	page := make([]byte, 4096)
	rand.Read(page)
	for off := 0; off+4096 <= size; off += 4096 {
		switch (off / 4096) % 4 {
		case 0, 1: // zero
		case 2:
			copy(out[off:], page)
		case 3:
			rand.Read(out[off : off+4096])
		}
	}
	return out
}

// treeSummary describes every entry of a tree: kind, mode, size, content
// hash, link target, mtime, xattrs and hard-link identity.
func treeSummary(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	inodes := map[uint64]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil // the target's own mode is the receiver's choice
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %v uid=%d", rel, fi.Mode(), st.Uid)
		switch {
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" size=%d crc=%08x mtime=%d", len(data), crc32.ChecksumIEEE(data), fi.ModTime().UnixNano())
			if first, ok := inodes[st.Ino]; ok {
				line += " linked-to=" + first
			} else {
				inodes[st.Ino] = rel
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case fi.IsDir():
			line += fmt.Sprintf(" mtime=%d", fi.ModTime().UnixNano())
		case fi.Mode()&fs.ModeDevice != 0:
			line += fmt.Sprintf(" dev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		if xs, err := readXattrs(p); err == nil && len(xs) > 0 {
			line += fmt.Sprintf(" xattrs=%q", xs)
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestDirStreamRoundTrip(t *testing.T) {
	for _, tr := range transports {
		for _, level := range []int{0, 1, 9} {
			t.Run(fmt.Sprintf("%s/zstd-%d", tr.name, level), func(t *testing.T) {
				src := t.TempDir()
				makeTree(t, src)
				a, b, ccfg, scfg := tr.connect(t, testConfig(RoleSource), testConfig(RoleDestination))
				ccfg.CompressLevel = level
				c, s := establishPair(testContext(t), a, b, ccfg, scfg)
				if c.err != nil || s.err != nil {
					t.Fatal(c.err, s.err)
				}
				defer c.s.Close()
				defer s.s.Close()
				dst := filepath.Join(t.TempDir(), "images")
				ctx := testContext(t)
				got := make(chan error, 1)
				var rstats DirStats
				go func() {
					var err error
					rstats, err = s.s.ReceiveDir(ctx, "round-1", dst, treePolicy())
					got <- err
				}()
				sstats, err := c.s.SendDir(ctx, "round-1", src)
				if err != nil {
					t.Fatal(err)
				}
				if err := <-got; err != nil {
					t.Fatal(err)
				}
				if want, have := treeSummary(t, src), treeSummary(t, dst); want != have {
					t.Fatalf("trees differ:\nsent:\n%s\nreceived:\n%s", want, have)
				}
				if sstats.Entries != rstats.Entries || sstats.Bytes != rstats.Bytes || sstats.WireBytes != rstats.WireBytes {
					t.Fatalf("stats differ: sent %+v, received %+v", sstats, rstats)
				}
				if level > 0 && sstats.WireBytes >= sstats.Bytes {
					t.Fatalf("compression level %d saved nothing: %+v", level, sstats)
				}
			})
		}
	}
}

func TestParallelDirStreams(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c, s := sessionPair(t, tr)
			ctx := testContext(t)
			src := t.TempDir()
			makeTree(t, src)
			dst := t.TempDir()
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for i := range 4 {
				name := fmt.Sprint("stream-", i)
				wg.Add(2)
				go func() {
					defer wg.Done()
					_, err := s.ReceiveDir(ctx, name, filepath.Join(dst, name), treePolicy())
					errs <- err
				}()
				go func() {
					defer wg.Done()
					_, err := c.SendDir(ctx, name, src)
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			want := treeSummary(t, src)
			for i := range 4 {
				if got := treeSummary(t, filepath.Join(dst, fmt.Sprint("stream-", i))); got != want {
					t.Fatalf("stream %d differs", i)
				}
			}
		})
	}
}

// TestRootfsStreamKeepsWhiteouts sends what an overlay upper directory holds:
// a whiteout (char 0/0), an opaque directory (trusted.overlay.opaque) and an
// absolute symlink. Needs root for mknod and trusted xattrs.
func TestRootfsStreamKeepsWhiteouts(t *testing.T) {
	labtest.SkipUnless(t, os.Geteuid() == 0, "root (mknod of a whiteout, trusted.* xattrs)")
	src := t.TempDir()
	if err := unix.Mknod(filepath.Join(src, "deleted"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, "opaque"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(src, "opaque"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/bin/busybox", filepath.Join(src, "sh")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(src, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Device nodes a process made, which the policy accepts by name.
	if err := unix.Mknod(filepath.Join(src, "console2"), unix.S_IFCHR|0o620, int(unix.Mkdev(5, 1))); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(src, "opaque", "loop9"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 9))); err != nil {
		t.Fatal(err)
	}
	c, s := sessionPair(t, transports[1])
	ctx := testContext(t)
	dst := t.TempDir()
	got := make(chan error, 1)
	p := withDevices(Device{Path: "console2", Major: 5, Minor: 1}, Device{Path: "opaque/loop9", Block: true, Major: 7, Minor: 9})
	go func() { _, err := s.ReceiveDir(ctx, "rootfs", dst, p); got <- err }()
	if _, err := c.SendDir(ctx, "rootfs", src); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if want, have := treeSummary(t, src), treeSummary(t, dst); want != have {
		t.Fatalf("trees differ:\nsent:\n%s\nreceived:\n%s", want, have)
	}
	for _, d := range p.Devices {
		var st unix.Stat_t
		err := unix.Lstat(filepath.Join(dst, d.Path), &st)
		if err != nil || unix.Major(st.Rdev) != d.Major || unix.Minor(st.Rdev) != d.Minor || (st.Mode&unix.S_IFMT == unix.S_IFBLK) != d.Block {
			t.Fatalf("device node %s received as mode %o rdev %d:%d (%v)", d.Path, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev), err)
		}
	}
}

// stream builds a crafted directory stream, record by record.
type stream struct {
	bytes.Buffer
	crc     uint32
	entries uint64
	size    uint64
}

func (s *stream) entry(e Entry) *stream {
	hdr := e.marshal()
	writeRecord(s, recEntry, hdr)
	s.crc = crc32.Update(0, castagnoli, hdr)
	return s
}

func (s *stream) data(b []byte) *stream {
	writeRecord(s, recData, b)
	s.crc = crc32.Update(s.crc, castagnoli, b)
	s.size += uint64(len(b))
	return s
}

func (s *stream) end(size uint64) *stream {
	p := binary.BigEndian.AppendUint32(nil, s.crc)
	writeRecord(s, recEntryEnd, binary.BigEndian.AppendUint64(p, size))
	s.entries++
	return s
}

func (s *stream) finish() *stream {
	writeRecord(s, recStreamEnd, countsPayload(s.entries, s.size))
	return s
}

func (s *stream) raw(typ byte, p []byte) *stream {
	writeRecord(s, typ, p)
	return s
}

func file(path string, data string) func(*stream) {
	return func(s *stream) {
		s.entry(Entry{Kind: KindFile, Path: path, Mode: 0o644, Size: uint64(len(data))})
		if data != "" {
			s.data([]byte(data))
		}
		s.end(uint64(len(data)))
	}
}

func node(e Entry) func(*stream) { return func(s *stream) { s.entry(e).end(0) } }

func TestDirStreamRefusals(t *testing.T) {
	small := ImagePolicy()
	small.MaxEntrySize, small.MaxTotalSize, small.MaxEntries = 10, 15, 3
	tests := []struct {
		name   string
		policy Policy
		build  func(*stream)
		want   error
	}{
		{"absolute path", ImagePolicy(), file("/etc/passwd", "x"), ErrUnsafeEntry},
		{"dot-dot path", ImagePolicy(), file("../escape", "x"), ErrUnsafeEntry},
		{"dot-dot inside path", ImagePolicy(), file("a/../../escape", "x"), ErrUnsafeEntry},
		{"unclean path", ImagePolicy(), file("a//b", "x"), ErrUnsafeEntry},
		{"empty path", ImagePolicy(), file("", "x"), ErrUnsafeEntry},
		{"NUL in path", ImagePolicy(), file("a\x00b", "x"), ErrUnsafeEntry},
		{"parent missing", ImagePolicy(), file("nodir/f", "x"), ErrUnsafeEntry},
		{"symlink pointing out", ImagePolicy(), node(Entry{Kind: KindSymlink, Path: "l", Link: "../../etc"}), ErrUnsafeEntry},
		{"absolute symlink in images", ImagePolicy(), node(Entry{Kind: KindSymlink, Path: "l", Link: "/etc"}), ErrUnsafeEntry},
		{"absolute symlink out of rootfs by dot-dot", RootfsPolicy(), node(Entry{Kind: KindSymlink, Path: "a", Link: "../x"}), ErrUnsafeEntry},
		{"write through a symlink", RootfsPolicy(), func(s *stream) {
			node(Entry{Kind: KindSymlink, Path: "etc", Link: "/etc"})(s)
			file("etc/passwd", "x")(s)
		}, ErrUnsafeEntry},
		{"write through an in-tree symlink", ImagePolicy(), func(s *stream) {
			node(Entry{Kind: KindDirectory, Path: "d", Mode: 0o755})(s)
			node(Entry{Kind: KindSymlink, Path: "l", Link: "d"})(s)
			file("l/f", "x")(s)
		}, ErrUnsafeEntry},
		{"symlink in images", ImagePolicy(), node(Entry{Kind: KindSymlink, Path: "l", Link: "pages-1.img"}), ErrUnsafeEntry},
		{"write through a chain of in-tree symlinks", RootfsPolicy(), func(s *stream) {
			node(Entry{Kind: KindSymlink, Path: "up", Link: "/"})(s)
			node(Entry{Kind: KindSymlink, Path: "chain", Link: "up"})(s)
			file("chain/etc/passwd", "x")(s)
		}, ErrUnsafeEntry},
		{"capability-like xattr name", RootfsPolicy(), node(Entry{Kind: KindDirectory, Path: "d", Xattrs: []Xattr{{"security.capability.evil", []byte("x")}}}), ErrUnsafeEntry},
		{"too much metadata kept", retainSmall(), func(s *stream) {
			for i := range 40 {
				node(Entry{Kind: KindDirectory, Path: fmt.Sprintf("directory-%02d", i), Mode: 0o755})(s)
			}
		}, ErrTooLarge},
		{"hard link out", ImagePolicy(), node(Entry{Kind: KindHardlink, Path: "h", Link: "../../etc/shadow"}), ErrUnsafeEntry},
		{"hard link to unknown file", ImagePolicy(), node(Entry{Kind: KindHardlink, Path: "h", Link: "elsewhere"}), ErrUnsafeEntry},
		{"hard link to directory", ImagePolicy(), func(s *stream) {
			node(Entry{Kind: KindDirectory, Path: "d", Mode: 0o755})(s)
			node(Entry{Kind: KindHardlink, Path: "h", Link: "d"})(s)
		}, ErrUnsafeEntry},
		{"device node", RootfsPolicy(), node(Entry{Kind: KindCharDev, Path: "null", DevMajor: 1, DevMinor: 3}), ErrUnsafeEntry},
		{"block device", RootfsPolicy(), node(Entry{Kind: KindBlockDev, Path: "sda", DevMajor: 8}), ErrUnsafeEntry},
		{"device node of another number than accepted", withDevices(Device{Path: "null", Major: 1, Minor: 3}), node(Entry{Kind: KindCharDev, Path: "null", DevMajor: 1, DevMinor: 1}), ErrUnsafeEntry},
		{"device node at another path than accepted", withDevices(Device{Path: "null", Major: 1, Minor: 3}), node(Entry{Kind: KindCharDev, Path: "null2", DevMajor: 1, DevMinor: 3}), ErrUnsafeEntry},
		{"block node where a character one is accepted", withDevices(Device{Path: "null", Major: 1, Minor: 3}), node(Entry{Kind: KindBlockDev, Path: "null", DevMajor: 1, DevMinor: 3}), ErrUnsafeEntry},
		{"whiteout in images", ImagePolicy(), node(Entry{Kind: KindCharDev, Path: "wh"}), ErrUnsafeEntry},
		{"fifo in images", ImagePolicy(), node(Entry{Kind: KindFifo, Path: "p"}), ErrUnsafeEntry},
		{"xattr not accepted", RootfsPolicy(), node(Entry{Kind: KindDirectory, Path: "d", Xattrs: []Xattr{{"security.selinux", []byte("x")}}}), ErrUnsafeEntry},
		{"xattr in images", ImagePolicy(), node(Entry{Kind: KindDirectory, Path: "d", Xattrs: []Xattr{{"user.x", []byte("x")}}}), ErrUnsafeEntry},
		{"oversized entry", small, file("big", "12345678901"), ErrTooLarge},
		{"oversized stream", small, func(s *stream) { file("a", "1234567890")(s); file("b", "123456")(s) }, ErrTooLarge},
		{"too many entries", small, func(s *stream) {
			for _, n := range []string{"a", "b", "c", "d"} {
				file(n, "")(s)
			}
		}, ErrTooLarge},
		{"overwrite existing file", ImagePolicy(), func(s *stream) { file("f", "1")(s); file("f", "2")(s) }, ErrUnsafeEntry},
		{"checksum mismatch", ImagePolicy(), func(s *stream) {
			s.entry(Entry{Kind: KindFile, Path: "f", Size: 3}).data([]byte("abc"))
			s.crc ^= 1
			s.end(3)
		}, ErrChecksum},
		{"content beyond size", ImagePolicy(), func(s *stream) {
			s.entry(Entry{Kind: KindFile, Path: "f", Size: 2}).data([]byte("abc")).end(2)
		}, ErrBadMessage},
		{"size in end record differs", ImagePolicy(), func(s *stream) {
			s.entry(Entry{Kind: KindFile, Path: "f", Size: 3}).data([]byte("abc")).end(4)
		}, ErrChecksum},
		{"truncated inside content", ImagePolicy(), func(s *stream) {
			s.entry(Entry{Kind: KindFile, Path: "f", Size: 10}).data([]byte("abc"))
		}, ErrTruncated},
		{"truncated before end of stream", ImagePolicy(), func(s *stream) { file("f", "abc")(s) }, ErrTruncated},
		{"counts disagree at end", ImagePolicy(), func(s *stream) { file("f", "abc")(s); s.entries++ }, ErrTruncated},
		{"unknown record", ImagePolicy(), func(s *stream) { s.raw('?', nil) }, ErrBadMessage},
		{"oversized record", ImagePolicy(), func(s *stream) {
			s.WriteByte(recData)
			binary.Write(s, binary.BigEndian, uint32(maxRecord+1))
		}, ErrBadMessage},
		{"unknown entry kind", ImagePolicy(), node(Entry{Kind: 99, Path: "x"}), ErrBadMessage},
		{"mode beyond 07777", ImagePolicy(), node(Entry{Kind: KindDirectory, Path: "d", Mode: 0o170000}), ErrBadMessage},
		{"zstd bomb", ImagePolicy(), func(s *stream) {
			s.entry(Entry{Kind: KindFile, Path: "f", Size: 8})
			p := binary.BigEndian.AppendUint32(nil, 8)
			s.raw(recZstd, append(p, "not zstd"...))
		}, ErrBadMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outer := t.TempDir()
			root := filepath.Join(outer, "target")
			var s stream
			tt.build(&s)
			if tt.want != ErrTruncated || strings.Contains(tt.name, "counts") {
				s.finish()
			}
			var reply bytes.Buffer
			_, dec, err := newCodecs(0)
			if err != nil {
				t.Fatal(err)
			}
			_, err = receiveDir(testContext(t), readWriter{&s, &reply}, root, tt.policy, dec)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if typ, p, _ := readRecord(&reply, nil); typ != recNak || len(p) == 0 {
				t.Fatalf("receiver replied %q, want a refusal", typ)
			}
			assertOnlyTarget(t, outer)
		})
	}
}

// assertOnlyTarget fails if anything but outer/target exists in outer.
func assertOnlyTarget(t *testing.T, outer string) {
	t.Helper()
	ents, err := os.ReadDir(outer)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "target" {
			t.Fatalf("receiver wrote %s outside its target", e.Name())
		}
	}
}

func TestSenderSeesReceiverRefusal(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c, s := sessionPair(t, tr)
			ctx := testContext(t)
			src := t.TempDir()
			if err := os.Symlink("/etc/passwd", filepath.Join(src, "evil")); err != nil {
				t.Fatal(err)
			}
			got := make(chan error, 1)
			go func() { _, err := s.ReceiveDir(ctx, "images", t.TempDir(), ImagePolicy()); got <- err }()
			_, err := c.SendDir(ctx, "images", src)
			if !errors.Is(err, ErrRejected) && !errors.Is(err, ErrPeer) {
				t.Fatalf("sender: %v, want the receiver's refusal", err)
			}
			if !strings.Contains(err.Error(), "symlink evil") {
				t.Fatalf("sender's error does not say why: %v", err)
			}
			if rerr := <-got; !errors.Is(rerr, ErrUnsafeEntry) {
				t.Fatalf("receiver: %v", rerr)
			}
			select {
			case <-c.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("a failed stream did not end the session")
			}
		})
	}
}

func TestTruncatedSessionStream(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			c, s := sessionPair(t, tr)
			ctx := testContext(t)
			got := make(chan error, 1)
			go func() { _, err := s.ReceiveDir(ctx, "cut", t.TempDir(), ImagePolicy()); got <- err }()
			st, err := c.Open(ctx, KindDir, "cut")
			if err != nil {
				t.Fatal(err)
			}
			var half stream
			half.entry(Entry{Kind: KindFile, Path: "f", Size: 1 << 20}).data(make([]byte, 1000))
			io.Copy(st, &half)
			c.conn.Conn.Close() // the link dies mid-file
			err = <-got
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrClosed) {
				t.Fatalf("receiver: %v, want truncation or connection loss", err)
			}
		})
	}
}

// TestSendDirSkipping leaves out the named top-level entries only: a CRIU
// image directory's local "parent" link, not a nested entry of that name.
func TestSendDirSkipping(t *testing.T) {
	src := t.TempDir()
	for _, f := range []string{"pages-1.img", "sub/parent"} {
		os.MkdirAll(filepath.Join(src, filepath.Dir(f)), 0o700)
		if err := os.WriteFile(filepath.Join(src, f), []byte(f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../round-1", filepath.Join(src, "parent")); err != nil {
		t.Fatal(err)
	}
	tr := transports[0]
	a, b, ccfg, scfg := tr.connect(t, testConfig(RoleSource), testConfig(RoleDestination))
	c, s := establishPair(testContext(t), a, b, ccfg, scfg)
	if c.err != nil || s.err != nil {
		t.Fatal(c.err, s.err)
	}
	defer c.s.Close()
	defer s.s.Close()
	ctx := testContext(t)
	dst := filepath.Join(t.TempDir(), "images")
	got := make(chan error, 1)
	go func() {
		// The image policy refuses a link out of the tree: had "parent"
		// been sent, this would fail.
		_, err := s.s.ReceiveDir(ctx, "images", dst, ImagePolicy())
		got <- err
	}()
	if _, err := c.s.SendDirSkipping(ctx, "images", src, []string{"parent"}); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dst, "parent")); !os.IsNotExist(err) {
		t.Fatalf("parent was sent: %v", err)
	}
	for _, f := range []string{"pages-1.img", "sub/parent"} {
		if b, err := os.ReadFile(filepath.Join(dst, f)); err != nil || string(b) != f {
			t.Fatalf("%s: %q %v", f, b, err)
		}
	}
}

func retainSmall() Policy {
	p := ImagePolicy()
	p.MaxRetained = 1 << 10
	return p
}

// TestReceiverNeverWritesThroughASwappedParent replaces a directory the
// stream created with a symlink to a directory outside the target while
// the stream runs (as a container sharing a volume being received could):
// the entries that follow must not land outside.
func TestReceiverNeverWritesThroughASwappedParent(t *testing.T) {
	outer := t.TempDir()
	root := filepath.Join(outer, "target")
	outside := filepath.Join(outer, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	_, dec, err := newCodecs(0)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := receiveDir(testContext(t), readWriter{pr, io.Discard}, root, RootfsPolicy(), dec)
		pr.CloseWithError(err)
		got <- err
	}()
	var s stream
	node(Entry{Kind: KindDirectory, Path: "d", Mode: 0o755})(&s)
	node(Entry{Kind: KindDirectory, Path: "d/e", Mode: 0o755})(&s)
	pw.Write(s.Bytes())
	s.Reset()
	waitFor(t, func() bool { _, err := os.Stat(filepath.Join(root, "d", "e")); return err == nil })
	if err := os.Rename(filepath.Join(root, "d"), filepath.Join(root, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "d")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(outside, "e"), 0o755); err != nil {
		t.Fatal(err)
	}
	file("d/e/f", "x")(&s)
	node(Entry{Kind: KindFifo, Path: "d/e/p", Mode: 0o644})(&s)
	s.finish()
	pw.Write(s.Bytes())
	pw.Close()
	if err := <-got; err == nil {
		t.Fatal("the stream succeeded through a swapped parent")
	}
	ents, _ := os.ReadDir(filepath.Join(outside, "e"))
	if len(ents) != 0 {
		t.Fatalf("receiver wrote %v outside its target", ents)
	}
}

// TestRootfsXattrsAppliedDroppedOrRefused: overlay's opaque marker and user
// attributes are applied, overlay's host-specific ones (origin) dropped.
func TestRootfsXattrsAppliedDroppedOrRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("trusted.* attributes need root")
	}
	outer := t.TempDir()
	root := filepath.Join(outer, "target")
	var s stream
	node(Entry{Kind: KindDirectory, Path: "d", Mode: 0o755, Xattrs: []Xattr{
		{"trusted.overlay.opaque", []byte("y")},
		{"trusted.overlay.origin", []byte{0, 1, 2}},
	}})(&s)
	s.finish()
	_, dec, err := newCodecs(0)
	if err != nil {
		t.Fatal(err)
	}
	var reply bytes.Buffer
	if _, err := receiveDir(testContext(t), readWriter{&s, &reply}, root, RootfsPolicy(), dec); err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(root, "d")
	buf := make([]byte, 16)
	if n, err := unix.Lgetxattr(d, "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Fatalf("opaque marker: %q, %v", buf[:n], err)
	}
	if _, err := unix.Lgetxattr(d, "trusted.overlay.origin", buf); !errors.Is(err, unix.ENODATA) {
		t.Fatalf("origin file handle of the source's file system applied (err %v)", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
	}
}

// TestReceiverKeepsFreeSpace: on a 16 MiB file system with 8 MiB to be kept
// free, a 4 MiB file is received and a 6 MiB one refused, whatever sizes the
// sender announced elsewhere.
func TestReceiverKeepsFreeSpace(t *testing.T) {
	outer := t.TempDir()
	if err := unix.Mount("tmpfs", outer, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("needs a tmpfs mount (root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(outer, unix.MNT_DETACH) })
	policy := ImagePolicy()
	policy.KeepFree = 8 << 20
	receive := func(name string, size int) error {
		var s stream
		file(name, strings.Repeat("x", size))(&s)
		s.finish()
		_, dec, err := newCodecs(0)
		if err != nil {
			t.Fatal(err)
		}
		var reply bytes.Buffer
		_, err = receiveDir(testContext(t), readWriter{&s, &reply}, filepath.Join(outer, name), policy, dec)
		return err
	}
	if err := receive("small", 4<<20); err != nil {
		t.Fatalf("4 MiB with 16 MiB free and 8 kept: %v", err)
	}
	err := receive("big", 6<<20)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "disk would fill") {
		t.Fatalf("6 MiB with 12 MiB free and 8 kept: got %v", err)
	}
}

// withDevices is RootfsPolicy accepting the device nodes devs.
func withDevices(devs ...Device) Policy {
	p := RootfsPolicy()
	p.Devices = devs
	return p
}

// Streams that share a Budget are bounded together: two volumes of 600
// KiB each, under one estimate whose allowance is 1 MiB, are each within
// their own MaxTotalSize, but the second is refused at the file that
// would take the pair past the budget, which is not written; under a 2
// MiB budget both arrive. Real files over every transport.
func TestBudgetBoundsStreamsTogether(t *testing.T) {
	for _, tr := range transports {
		for _, c := range []struct {
			budget int64
			fits   bool
		}{{1 << 20, false}, {2 << 20, true}} {
			t.Run(fmt.Sprintf("%s/%d", tr.name, c.budget), func(t *testing.T) {
				c0, s := sessionPair(t, tr)
				ctx := testContext(t)
				p := RootfsPolicy()
				p.MaxTotalSize, p.Budget = 1<<20, NewBudget(c.budget)
				targets := [2]string{t.TempDir(), t.TempDir()}
				for i, name := range []string{"volume-0", "volume-1"} {
					src := t.TempDir()
					if err := os.WriteFile(filepath.Join(src, "data"), bytes.Repeat([]byte{'v'}, 600<<10), 0o644); err != nil {
						t.Fatal(err)
					}
					got := make(chan error, 1)
					go func() { _, err := s.ReceiveDir(ctx, name, targets[i], p); got <- err }()
					_, serr := c0.SendDir(ctx, name, src)
					err := <-got
					if i == 0 || c.fits {
						if err != nil || serr != nil {
							t.Fatalf("%s: receiver %v, sender %v", name, err, serr)
						}
						continue
					}
					if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "sharing its budget") {
						t.Fatalf("%s: got %v, want the shared budget's refusal", name, err)
					}
					if _, err := os.Lstat(filepath.Join(targets[i], "data")); !errors.Is(err, fs.ErrNotExist) {
						t.Fatalf("%s: the file over the budget was written (%v)", name, err)
					}
				}
			})
		}
	}
}
