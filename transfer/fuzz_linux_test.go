package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
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
// and never leave a symlink in an image directory.
func FuzzDirStream(f *testing.F) {
	var ok stream
	file("a", "hello")(&ok)
	node(Entry{Kind: KindDirectory, Path: "d", Mode: 0o755})(&ok)
	file("d/f", "x")(&ok)
	node(Entry{Kind: KindSymlink, Path: "d/l", Link: "../a"})(&ok)
	node(Entry{Kind: KindHardlink, Path: "h", Link: "a"})(&ok)
	ok.finish()
	f.Add(ok.Bytes())
	var bad stream
	file("../x", "x")(&bad)
	bad.finish()
	f.Add(bad.Bytes())
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
		}
	})
}

// checkContained fails if a file under target shares its inode with one
// outside it, or if an image directory holds a symlink.
func checkContained(t *testing.T, target string, images bool) {
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
