package transfer

import (
	"encoding/binary"
	"fmt"
	"io"
	"path"
	"strings"
)

// Directory stream records (spec.md, "Directory streams"): a one-byte type, a
// big-endian uint32 payload length, the payload.
const (
	recEntry     byte = 'E' // an Entry header
	recData      byte = 'D' // raw content bytes of the current file
	recZstd      byte = 'Z' // uint32 raw length, then one zstd frame
	recEntryEnd  byte = 'e' // uint32 CRC-32C of header and content, uint64 size
	recStreamEnd byte = 'S' // uint64 entries, uint64 content bytes
	recAck       byte = 'A' // receiver to sender: same payload as recStreamEnd
	recNak       byte = 'N' // receiver to sender: why it refused, as text
)

const recHeaderLen = 5

// maxRecord bounds any record payload: the largest chunk plus zstd's
// worst-case expansion and the raw-length prefix.
const maxRecord = MaxChunk + MaxChunk/128 + 1024

// EntryKind is the type of a directory entry.
type EntryKind uint8

const (
	KindDirectory EntryKind = 1
	KindFile      EntryKind = 2
	KindSymlink   EntryKind = 3
	KindHardlink  EntryKind = 4 // a further name for a file sent earlier
	KindCharDev   EntryKind = 5
	KindBlockDev  EntryKind = 6
	KindFifo      EntryKind = 7
)

func (k EntryKind) String() string {
	names := [...]string{"", "directory", "file", "symlink", "hardlink", "char device", "block device", "fifo"}
	if int(k) < len(names) && k != 0 {
		return names[k]
	}
	return fmt.Sprintf("kind-%d", uint8(k))
}

// Xattr is one extended attribute.
type Xattr struct {
	Name  string
	Value []byte
}

// Entry is one file system object in a directory stream. Path and Link use
// '/' and are relative to the stream's root.
type Entry struct {
	Kind     EntryKind
	Path     string
	Mode     uint32 // permission bits with setuid, setgid and sticky (07777)
	UID, GID uint32
	MTime    int64  // nanoseconds since the epoch
	Size     uint64 // content length of a file; 0 otherwise
	Link     string // symlink target, or the earlier path of a hard link
	DevMajor uint32
	DevMinor uint32
	Xattrs   []Xattr
}

// Limits of an encoded entry header.
const (
	maxPathLen   = 4096
	maxNameLen   = 255
	maxXattrs    = 64
	maxXattrName = 255
	maxXattrVal  = 64 << 10
)

func (e *Entry) marshal() []byte {
	b := make([]byte, 0, 64+len(e.Path)+len(e.Link))
	b = append(b, byte(e.Kind))
	b = binary.BigEndian.AppendUint32(b, e.Mode)
	b = binary.BigEndian.AppendUint32(b, e.UID)
	b = binary.BigEndian.AppendUint32(b, e.GID)
	b = binary.BigEndian.AppendUint64(b, uint64(e.MTime))
	b = binary.BigEndian.AppendUint64(b, e.Size)
	b = binary.BigEndian.AppendUint32(b, e.DevMajor)
	b = binary.BigEndian.AppendUint32(b, e.DevMinor)
	b = appendString16(b, e.Path)
	b = appendString16(b, e.Link)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Xattrs)))
	for _, x := range e.Xattrs {
		b = appendString16(b, x.Name)
		b = binary.BigEndian.AppendUint32(b, uint32(len(x.Value)))
		b = append(b, x.Value...)
	}
	return b
}

func appendString16(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// decoder reads big-endian fields from a payload and remembers the first
// short read, so a decode is a straight sequence of reads and one check.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil || n > len(d.b) {
		if d.err == nil {
			d.err = io.ErrUnexpectedEOF
		}
		// Zeros for the fixed-size reads that follow, never n of them: n
		// may be a length the peer wrote (4 GiB of xattr value).
		return make([]byte, min(n, 8))
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8   { return d.take(1)[0] }
func (d *decoder) u16() uint16 { return binary.BigEndian.Uint16(d.take(2)) }
func (d *decoder) u32() uint32 { return binary.BigEndian.Uint32(d.take(4)) }
func (d *decoder) u64() uint64 { return binary.BigEndian.Uint64(d.take(8)) }

func (d *decoder) str16(max int) string {
	n := int(d.u16())
	if n > max && d.err == nil {
		d.err = fmt.Errorf("string of %d bytes, limit %d", n, max)
	}
	return string(d.take(n))
}

// unmarshalEntry decodes an entry header strictly: every byte used, every
// length within its limit, the kind known. It does not judge paths; the
// receiver's policy does.
func unmarshalEntry(p []byte) (Entry, error) {
	d := decoder{b: p}
	e := Entry{
		Kind: EntryKind(d.u8()), Mode: d.u32(), UID: d.u32(), GID: d.u32(),
		MTime: int64(d.u64()), Size: d.u64(), DevMajor: d.u32(), DevMinor: d.u32(),
	}
	e.Path = d.str16(maxPathLen)
	e.Link = d.str16(maxPathLen)
	n := int(d.u16())
	if n > maxXattrs && d.err == nil {
		d.err = fmt.Errorf("%d xattrs, limit %d", n, maxXattrs)
	}
	for i := 0; i < n && d.err == nil; i++ {
		x := Xattr{Name: d.str16(maxXattrName)}
		vlen := d.u32()
		if vlen > maxXattrVal && d.err == nil {
			d.err = fmt.Errorf("xattr value of %d bytes, limit %d", vlen, maxXattrVal)
		}
		x.Value = append([]byte(nil), d.take(int(vlen))...)
		e.Xattrs = append(e.Xattrs, x)
	}
	switch {
	case d.err != nil:
		return Entry{}, fmt.Errorf("%w: entry header: %v", ErrBadMessage, d.err)
	case len(d.b) != 0:
		return Entry{}, fmt.Errorf("%w: entry header: %d trailing bytes", ErrBadMessage, len(d.b))
	case e.Kind < KindDirectory || e.Kind > KindFifo:
		return Entry{}, fmt.Errorf("%w: entry kind %d", ErrBadMessage, e.Kind)
	case e.Mode&^0o7777 != 0:
		return Entry{}, fmt.Errorf("%w: mode %o has bits beyond 07777", ErrBadMessage, e.Mode)
	case e.Kind != KindFile && e.Size != 0:
		return Entry{}, fmt.Errorf("%w: %s with size %d", ErrBadMessage, e.Kind, e.Size)
	}
	return e, nil
}

// checkRelPath accepts only clean, relative, slash-separated paths that stay
// below the stream's root.
func checkRelPath(p string) error {
	switch {
	case p == "" || p == ".":
		return fmt.Errorf("%w: empty path", ErrUnsafeEntry)
	case len(p) > maxPathLen:
		return fmt.Errorf("%w: path of %d bytes", ErrUnsafeEntry, len(p))
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("%w: NUL in path %q", ErrUnsafeEntry, p)
	case path.IsAbs(p):
		return fmt.Errorf("%w: absolute path %q", ErrUnsafeEntry, p)
	case p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("%w: path %q leaves the target", ErrUnsafeEntry, p)
	case path.Clean(p) != p:
		return fmt.Errorf("%w: path %q is not clean", ErrUnsafeEntry, p)
	}
	for _, c := range strings.Split(p, "/") {
		if len(c) > maxNameLen {
			return fmt.Errorf("%w: name of %d bytes in %q", ErrUnsafeEntry, len(c), p)
		}
	}
	return nil
}

func writeRecord(w io.Writer, typ byte, payload []byte) error {
	var hdr [recHeaderLen]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// readRecord reads one record into buf (grown as needed, up to maxRecord).
func readRecord(r io.Reader, buf []byte) (byte, []byte, error) {
	var hdr [recHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return 0, buf, fmt.Errorf("%w: no end-of-stream record", ErrTruncated)
		}
		return 0, buf, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxRecord {
		return 0, buf, fmt.Errorf("%w: record of %d bytes, limit %d", ErrBadMessage, n, maxRecord)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, buf, fmt.Errorf("%w: inside a %q record: %w", ErrTruncated, hdr[0], err)
	}
	return hdr[0], buf, nil
}

func countsPayload(entries, bytes uint64) []byte {
	b := binary.BigEndian.AppendUint64(nil, entries)
	return binary.BigEndian.AppendUint64(b, bytes)
}

func parseCounts(p []byte) (entries, bytes uint64, err error) {
	if len(p) != 16 {
		return 0, 0, fmt.Errorf("%w: counts record of %d bytes", ErrBadMessage, len(p))
	}
	return binary.BigEndian.Uint64(p), binary.BigEndian.Uint64(p[8:]), nil
}
