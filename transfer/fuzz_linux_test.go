package transfer

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func frameBytes(t MsgType, payload []byte) []byte {
	var b bytes.Buffer
	writeFrame(&b, t, payload, DefaultMaxFrame)
	return b.Bytes()
}

// FuzzControlFrame feeds arbitrary bytes to the control-frame decoder: it
// must return a message or an error, never panic, and a decoded message
// must be valid and re-encode.
func FuzzControlFrame(f *testing.F) {
	h := hello(RoleSource)
	hb, _ := json.Marshal(&h)
	f.Add(frameBytes(MsgHello, hb))
	f.Add(frameBytes(MsgStreamOpen, []byte(`{"kind":"dir","name":"round-1"}`)))
	f.Add(frameBytes(MsgReject, []byte(`{"reason":"name taken"}`)))
	f.Add(frameBytes(MsgError, []byte(`{"message":"x","extra":1}`)))
	f.Add(frameBytes(MsgType(999), []byte(`{}`)))
	f.Add([]byte{0, 0, 0, 1, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		typ, payload, err := readFrame(bytes.NewReader(data), 4096)
		if err != nil {
			return
		}
		m, err := decodeMessage(typ, payload)
		if err != nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("decoded an invalid %s: %v", typ, err)
		}
		if _, err := encodeMessage(m); err != nil {
			t.Fatalf("decoded %s does not re-encode: %v", typ, err)
		}
	})
}

// FuzzDirStream feeds arbitrary bytes to a receiver, with the image policy
// or the most permissive one: it must never panic, never create anything
// outside its target, never leave a file there hard-linked to one outside,
// never leave a symlink in an image directory, and never leave a path that
// resolves outside the target (checkResolvesInside).
func FuzzDirStream(f *testing.F) {
	seeds := dirStreamSeeds()
	for _, name := range slices.Sorted(maps.Keys(seeds)) {
		f.Add(seeds[name].Bytes())
	}
	f.Add([]byte{recStreamEnd, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	_, dec, err := newCodecs(0)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, images := range []bool{false, true} {
			outer := t.TempDir()
			target := filepath.Join(outer, "target")
			policy := RootfsPolicy()
			if images {
				policy = ImagePolicy()
			}
			policy.MaxTotalSize = 1 << 20
			var reply bytes.Buffer
			receiveDir(context.Background(), readWriter{bytes.NewReader(data), &reply}, target, policy, dec)
			ents, err := os.ReadDir(outer)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ents {
				if e.Name() != "target" {
					t.Fatalf("wrote %s outside the target", e.Name())
				}
			}
			checkContained(t, target, images)
			checkResolvesInside(t, target, policy.Rootfs)
		}
	})
}

// dirStreamSeeds are the shapes a hostile stream tries, named for the
// regression test that replays them: chains of symlinks, entries beneath a
// symlink, ".." in paths and link targets, a hard link to a symlink, an
// entry replacing another of another kind.
func dirStreamSeeds() map[string]*stream {
	dir := func(p string) func(*stream) { return node(Entry{Kind: KindDirectory, Path: p, Mode: 0o755}) }
	link := func(p, to string) func(*stream) { return node(Entry{Kind: KindSymlink, Path: p, Link: to}) }
	build := func(steps ...func(*stream)) *stream {
		var s stream
		for _, step := range steps {
			step(&s)
		}
		return s.finish()
	}
	return map[string]*stream{
		"plain tree": build(file("a", "hello"), dir("d"), file("d/f", "x"),
			link("d/l", "../a"), node(Entry{Kind: KindHardlink, Path: "h", Link: "a"})),
		"path out":                         build(file("../x", "x")),
		"chained symlinks":                 build(dir("d"), link("l1", "l2"), link("l2", "l3"), link("l3", "d"), file("d/f", "x")),
		"chain climbing by a link":         build(dir("a"), link("a/up", ".."), link("b", "a/up/..")),
		"dot-dot after a link made later":  build(dir("d"), link("d/e", "x/../.."), link("d/x", ".")),
		"dot-dot through a link to a file": build(file("f", "x"), link("l", "f/../..")),
		"absolute chain":                   build(link("up", "/"), link("chain", "up/..")),
		"absolute then relative":           build(link("abs", "/d"), dir("d"), link("d/l", "../abs/l")),
		"entry beneath a symlink":          build(dir("d"), link("l", "d"), file("l/f", "x")),
		"entry beneath a chain":            build(dir("d"), link("l", "d"), link("m", "l"), dir("m/e")),
		"dot-dot in a path":                build(dir("d"), file("d/../../x", "x")),
		"dot-dot leading in a link":        build(dir("d"), dir("d/e"), link("d/e/l", "../../f"), link("d/m", "./../d/e")),
		"dot-dot leading out of a link":    build(dir("d"), link("d/n", "../..")),
		"hard link to a symlink":           build(file("f", "x"), link("l", "f"), node(Entry{Kind: KindHardlink, Path: "h", Link: "l"})),
		"directory replaced by a file":     build(dir("d"), file("d", "x")),
		"file replaced by a directory":     build(file("f", "x"), dir("f")),
		"directory replaced by a symlink":  build(dir("d"), link("d", "/etc")),
	}
}

// checkResolvesInside fails if a path under target, followed the way the
// kernel follows symlinks (as CRIU or a process on the host would), leads
// outside target. With rootfs, an absolute symlink is resolved from target
// (the container's root, as the container sees it), and from then on ".."
// at the root stays there; without it, an absolute symlink is an escape.
func checkResolvesInside(t *testing.T, target string, rootfs bool) {
	t.Helper()
	filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == target {
			return nil
		}
		rel, err := filepath.Rel(target, p)
		if err != nil {
			t.Fatal(err)
		}
		if via, out := resolveOut(target, rel, rootfs); out {
			t.Fatalf("%s resolves outside the target (via %s)", rel, strings.TrimSuffix(via, "; "))
		}
		return nil
	})
}

// resolveOut walks rel from root one component at a time, following
// symlinks (at most 40, as the kernel), and reports whether the walk left
// root, with the links it followed. A walk that stops (a missing entry, a
// file where a directory is due, a loop) stays inside.
func resolveOut(root, rel string, rootfs bool) (via string, out bool) {
	var cur []string // real directories from root
	todo := strings.Split(rel, "/")
	chrooted := false
	for links := 0; len(todo) > 0; {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) > 0 {
				cur = cur[:len(cur)-1]
			} else if !chrooted {
				return via, true
			}
			continue
		}
		here := filepath.Join(root, filepath.Join(cur...), c)
		fi, err := os.Lstat(here)
		if err != nil {
			return via, false
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			to, err := os.Readlink(here)
			if links++; err != nil || links > 40 {
				return via, false
			}
			via += fmt.Sprintf("%s -> %s; ", path.Join(path.Join(cur...), c), to)
			if path.IsAbs(to) {
				if !rootfs {
					return via, true
				}
				cur, chrooted = nil, true
			}
			todo = append(strings.Split(to, "/"), todo...)
		case fi.IsDir():
			cur = append(cur, c)
		case len(todo) > 0:
			return via, false // ENOTDIR
		}
	}
	return via, false
}

// TestDirStreamSeedsStayInside replays the fuzz seeds with both policies
// (what FuzzDirStream checks of each input, and a regression test for the
// shapes the oracle found escaping: a relative symlink whose ".." climbs
// back through another symlink).
func TestDirStreamSeedsStayInside(t *testing.T) {
	_, dec, err := newCodecs(0)
	if err != nil {
		t.Fatal(err)
	}
	for name, seed := range dirStreamSeeds() {
		for _, policy := range []Policy{RootfsPolicy(), ImagePolicy()} {
			t.Run(fmt.Sprintf("%s/rootfs=%v", name, policy.Rootfs), func(t *testing.T) {
				target := filepath.Join(t.TempDir(), "target")
				receiveDir(context.Background(), readWriter{bytes.NewReader(seed.Bytes()), io.Discard}, target, policy, dec)
				checkContained(t, target, !policy.Rootfs)
				checkResolvesInside(t, target, policy.Rootfs)
			})
		}
	}
}

// TestSymlinkClimbingThroughALink: the receiver refuses a relative symlink
// with ".." after a name, which the oracle found resolving outside the
// target (the name was, or later became, a symlink), and still accepts
// ".." leading a target.
func TestSymlinkClimbingThroughALink(t *testing.T) {
	_, dec, err := newCodecs(0)
	if err != nil {
		t.Fatal(err)
	}
	seeds := dirStreamSeeds()
	for _, tt := range []struct {
		seed string
		want error
	}{
		{"chain climbing by a link", ErrUnsafeEntry},
		{"dot-dot after a link made later", ErrUnsafeEntry},
		{"absolute chain", ErrUnsafeEntry},
		{"dot-dot leading out of a link", ErrUnsafeEntry},
		{"dot-dot leading in a link", nil},
		{"absolute then relative", nil},
	} {
		t.Run(tt.seed, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "target")
			_, err := receiveDir(context.Background(), readWriter{bytes.NewReader(seeds[tt.seed].Bytes()), io.Discard}, target, RootfsPolicy(), dec)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestEntryHeaderLengthsAllocateNothing: an entry header announcing more
// bytes than it holds (here a 4 GiB xattr value, beyond the limit) is
// refused without allocating what it announced. FuzzDirStream found it:
// each such header cost 4 GiB and a minute of zeroing.
func TestEntryHeaderLengthsAllocateNothing(t *testing.T) {
	b := []byte{byte(KindDirectory)}
	b = append(b, make([]byte, 4+4+4+8+8+4+4)...) // mode, uid, gid, mtime, size, device
	b = appendString16(b, "d")
	b = appendString16(b, "")
	b = binary.BigEndian.AppendUint16(b, 1)
	b = appendString16(b, "user.x")
	for _, vlen := range []uint32{maxXattrVal + 1, 1<<32 - 1} {
		hdr := binary.BigEndian.AppendUint32(slices.Clone(b), vlen)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := unmarshalEntry(hdr)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrBadMessage) {
			t.Fatalf("value of %d bytes: %v", vlen, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Fatalf("value of %d bytes: decoding allocated %d bytes", vlen, n)
		}
	}
}

// TestResolveOut checks the oracle itself on trees made by hand: it must
// see the escapes it is there to catch.
func TestResolveOut(t *testing.T) {
	tests := []struct {
		name   string
		links  map[string]string // path -> target
		dirs   []string          // made before the links
		path   string
		rootfs bool
		out    bool
	}{
		{"plain directory", nil, []string{"d"}, "d", false, false},
		{"relative link inside", map[string]string{"l": "d"}, []string{"d"}, "l", false, false},
		{"relative link out", map[string]string{"l": "../x"}, nil, "l", false, true},
		{"absolute link, images", map[string]string{"l": "/etc"}, nil, "l", false, true},
		{"absolute link, rootfs", map[string]string{"l": "/etc"}, nil, "l", true, false},
		{"absolute dot-dot, rootfs", map[string]string{"l": "/../../etc"}, nil, "l", true, false},
		{"climb through a link", map[string]string{"a/up": "..", "b": "a/up/.."}, []string{"a"}, "b", true, true},
		{"missing component stops", map[string]string{"l": "nothing/../../.."}, nil, "l", true, false},
		{"loop stops", map[string]string{"l": "m", "m": "l"}, nil, "l", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "target")
			for _, d := range append([]string{"."}, tt.dirs...) {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for p, to := range tt.links {
				if err := os.Symlink(to, filepath.Join(root, p)); err != nil {
					t.Fatal(err)
				}
			}
			if via, out := resolveOut(root, tt.path, tt.rootfs); out != tt.out {
				t.Fatalf("out = %v (via %s), want %v", out, via, tt.out)
			}
		})
	}
}

// checkContained fails if a file under target shares its inode with one
// outside it, or if an image directory holds a symlink.
func checkContained(t *testing.T, target string, images bool) {
	t.Helper()
	links := map[uint64]uint64{}
	nlink := map[uint64]uint64{}
	filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil
		}
		if images && fi.Mode()&fs.ModeSymlink != 0 {
			t.Fatalf("image directory holds symlink %s", p)
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && fi.Mode().IsRegular() {
			links[st.Ino]++
			nlink[st.Ino] = uint64(st.Nlink)
		}
		return nil
	})
	for ino, n := range links {
		if nlink[ino] != n {
			t.Fatalf("inode %d has %d links, %d of them in the target", ino, nlink[ino], n)
		}
	}
}
