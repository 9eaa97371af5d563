package transfer

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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

// FuzzDirStream feeds arbitrary bytes to a receiver with the most permissive
// policy: it must never panic and never create anything outside its target.
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
		outer := t.TempDir()
		policy := RootfsPolicy()
		policy.MaxTotalSize = 1 << 20
		var reply bytes.Buffer
		receiveDir(context.Background(), readWriter{bytes.NewReader(data), &reply}, filepath.Join(outer, "target"), policy, dec)
		ents, err := os.ReadDir(outer)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Name() != "target" {
				t.Fatalf("wrote %s outside the target", e.Name())
			}
		}
	})
}
