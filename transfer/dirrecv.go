package transfer

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Policy says what a receiver accepts into its target directory. Whatever
// the policy, nothing is ever written outside the target: entries are
// created only below directories this stream created or that already exist
// as real directories, and existing non-directories are never replaced.
type Policy struct {
	// Rootfs accepts what a container's writable layer holds beyond plain
	// files: overlay whiteouts (character device 0/0), fifos, and absolute
	// symlinks (which resolve inside the container). Default false (CRIU
	// image directories hold none of these).
	Rootfs bool
	// XattrPrefixes lists the extended attribute names accepted; others are
	// refused. Default none; RootfsPolicy accepts overlay's and capabilities.
	XattrPrefixes []string
	// MaxEntrySize bounds one file's content. Default 64 GiB; must be positive.
	MaxEntrySize int64
	// MaxTotalSize bounds the stream's content. Default 1 TiB; must be positive.
	MaxTotalSize int64
	// MaxEntries bounds the number of entries. Default 1<<20; must be positive.
	MaxEntries int64
}

// ImagePolicy is the policy for CRIU image directories.
func ImagePolicy() Policy {
	return Policy{MaxEntrySize: 64 << 30, MaxTotalSize: 1 << 40, MaxEntries: 1 << 20}
}

// RootfsPolicy is the policy for a container's writable layer.
func RootfsPolicy() Policy {
	p := ImagePolicy()
	p.Rootfs = true
	p.XattrPrefixes = []string{"trusted.overlay.", "user.", "security.capability"}
	return p
}

// receiver applies one directory stream to its target directory.
type receiver struct {
	root    string
	policy  Policy
	dec     *zstd.Decoder
	in      *bufio.Reader
	buf     []byte
	zbuf    []byte
	crc     hash.Hash32
	known   map[string]EntryKind // entries of this stream, and checked existing dirs
	dirs    []Entry              // directories, to finish after their contents
	asRoot  bool
	stats   DirStats
	entries int64
}

// receiveDir reads a directory stream from rw into root (created if
// missing), then acknowledges it; on any failure it tells the sender why.
func receiveDir(ctx context.Context, rw io.ReadWriter, root string, p Policy, dec *zstd.Decoder) (DirStats, error) {
	start := time.Now()
	r := &receiver{
		root: root, policy: p, dec: dec,
		in:     bufio.NewReaderSize(rw, 16<<10),
		crc:    crc32.New(castagnoli),
		known:  map[string]EntryKind{".": KindDirectory},
		asRoot: os.Geteuid() == 0,
	}
	err := r.run(ctx)
	if err != nil {
		writeRecord(rw, recNak, []byte(truncate(err.Error(), maxText)))
		return r.stats, fmt.Errorf("receive into %s: %w", root, err)
	}
	if err := writeRecord(rw, recAck, countsPayload(uint64(r.stats.Entries), uint64(r.stats.Bytes))); err != nil {
		return r.stats, fmt.Errorf("receive into %s: acknowledge: %w", root, err)
	}
	r.stats.Duration = time.Since(start)
	return r.stats, nil
}

func (r *receiver) run(ctx context.Context) error {
	if err := os.MkdirAll(r.root, 0o700); err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		typ, p, err := r.next()
		if err != nil {
			return err
		}
		switch typ {
		case recEntry:
			if err := r.entry(p); err != nil {
				return err
			}
		case recStreamEnd:
			return r.finish(p)
		default:
			return fmt.Errorf("%w: record %q where an entry was due", ErrBadMessage, typ)
		}
	}
}

func (r *receiver) next() (byte, []byte, error) {
	typ, p, err := readRecord(r.in, r.buf)
	r.buf = p
	r.stats.WireBytes += int64(recHeaderLen + len(p))
	return typ, p, err
}

func (r *receiver) entry(hdr []byte) error {
	e, err := unmarshalEntry(hdr)
	if err != nil {
		return err
	}
	if r.entries++; r.entries > r.policy.MaxEntries {
		return fmt.Errorf("%w: more than %d entries", ErrTooLarge, r.policy.MaxEntries)
	}
	if err := r.check(e); err != nil {
		return err
	}
	r.crc.Reset()
	r.crc.Write(hdr)
	if err := r.create(e); err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	typ, p, err := r.next()
	if err != nil {
		return err
	}
	if typ != recEntryEnd || len(p) != 12 {
		return fmt.Errorf("%w: %s: record %q where its end was due", ErrBadMessage, e.Path, typ)
	}
	if sum := binary.BigEndian.Uint32(p); sum != r.crc.Sum32() || binary.BigEndian.Uint64(p[4:]) != e.Size {
		return fmt.Errorf("%w: %s", ErrChecksum, e.Path)
	}
	r.known[e.Path] = e.Kind
	r.stats.Entries++
	return nil
}

// check applies the policy to an entry before anything touches the disk.
func (r *receiver) check(e Entry) error {
	if err := checkRelPath(e.Path); err != nil {
		return err
	}
	if err := r.checkParent(path.Dir(e.Path)); err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	switch e.Kind {
	case KindFile:
		if int64(e.Size) > r.policy.MaxEntrySize || e.Size > 1<<62 {
			return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, e.Path, e.Size, r.policy.MaxEntrySize)
		}
		if r.stats.Bytes+int64(e.Size) > r.policy.MaxTotalSize {
			return fmt.Errorf("%w: stream exceeds %d bytes at %s", ErrTooLarge, r.policy.MaxTotalSize, e.Path)
		}
	case KindSymlink:
		if err := r.checkSymlink(e); err != nil {
			return err
		}
	case KindHardlink:
		if err := checkRelPath(e.Link); err != nil || r.known[e.Link] != KindFile {
			return fmt.Errorf("%w: hard link %s -> %q does not name a file of this stream", ErrUnsafeEntry, e.Path, e.Link)
		}
	case KindCharDev:
		if !r.policy.Rootfs || e.DevMajor != 0 || e.DevMinor != 0 {
			return fmt.Errorf("%w: device %s (%d:%d)", ErrUnsafeEntry, e.Path, e.DevMajor, e.DevMinor)
		}
	case KindBlockDev:
		return fmt.Errorf("%w: block device %s", ErrUnsafeEntry, e.Path)
	case KindFifo:
		if !r.policy.Rootfs {
			return fmt.Errorf("%w: fifo %s", ErrUnsafeEntry, e.Path)
		}
	}
	return r.checkXattrs(e)
}

// checkParent accepts a parent that this stream created as a directory, or
// an existing real directory (every component checked, no symlinks).
func (r *receiver) checkParent(dir string) error {
	if k, ok := r.known[dir]; ok {
		if k != KindDirectory {
			return fmt.Errorf("%w: parent %s is a %s", ErrUnsafeEntry, dir, k)
		}
		return nil
	}
	if err := r.checkParent(path.Dir(dir)); err != nil {
		return err
	}
	fi, err := os.Lstat(filepath.Join(r.root, filepath.FromSlash(dir)))
	if err != nil {
		return fmt.Errorf("%w: parent %s: %v", ErrUnsafeEntry, dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: parent %s is not a directory", ErrUnsafeEntry, dir)
	}
	r.known[dir] = KindDirectory
	return nil
}

func (r *receiver) checkSymlink(e Entry) error {
	t := e.Link
	switch {
	case t == "" || len(t) > maxPathLen || strings.ContainsRune(t, 0):
		return fmt.Errorf("%w: symlink %s has target %q", ErrUnsafeEntry, e.Path, t)
	case path.IsAbs(t):
		if !r.policy.Rootfs {
			return fmt.Errorf("%w: symlink %s points out to %q", ErrUnsafeEntry, e.Path, t)
		}
		return nil
	}
	resolved := path.Join(path.Dir(e.Path), t)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return fmt.Errorf("%w: symlink %s points out to %q", ErrUnsafeEntry, e.Path, t)
	}
	return nil
}

func (r *receiver) checkXattrs(e Entry) error {
next:
	for _, x := range e.Xattrs {
		for _, p := range r.policy.XattrPrefixes {
			if strings.HasPrefix(x.Name, p) {
				continue next
			}
		}
		return fmt.Errorf("%w: %s: xattr %q not accepted", ErrUnsafeEntry, e.Path, x.Name)
	}
	return nil
}

func (r *receiver) create(e Entry) error {
	full := filepath.Join(r.root, filepath.FromSlash(e.Path))
	if e.Kind == KindDirectory {
		return r.createDir(full, e)
	}
	if _, err := os.Lstat(full); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: already exists", ErrUnsafeEntry)
	}
	var err error
	switch e.Kind {
	case KindFile:
		return r.createFile(full, e)
	case KindSymlink:
		err = os.Symlink(e.Link, full)
	case KindHardlink:
		return os.Link(filepath.Join(r.root, filepath.FromSlash(e.Link)), full)
	default:
		err = mknod(full, e)
	}
	if err != nil {
		return err
	}
	return r.finishMeta(full, e)
}

func (r *receiver) createDir(full string, e Entry) error {
	fi, err := os.Lstat(full)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(full, 0o700); err != nil {
			return err
		}
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%w: exists and is not a directory", ErrUnsafeEntry)
	}
	r.dirs = append(r.dirs, e)
	return nil
}

func (r *receiver) createFile(full string, e Entry) error {
	f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, 0o600)
	if err != nil {
		return err
	}
	err = r.content(f, e.Size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	r.stats.Bytes += int64(e.Size)
	return r.finishMeta(full, e)
}

// content copies size bytes of data records into f.
func (r *receiver) content(f *os.File, size uint64) error {
	for left := size; left > 0; {
		typ, p, err := r.next()
		if err != nil {
			return err
		}
		var data []byte
		switch typ {
		case recData:
			data = p
		case recZstd:
			if data, err = r.decompress(p); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: record %q inside file content", ErrBadMessage, typ)
		}
		if uint64(len(data)) > left || len(data) == 0 {
			return fmt.Errorf("%w: %d content bytes with %d left", ErrBadMessage, len(data), left)
		}
		left -= uint64(len(data))
		r.crc.Write(data)
		if _, err := f.Write(data); err != nil {
			return err
		}
	}
	return nil
}

func (r *receiver) decompress(p []byte) ([]byte, error) {
	if len(p) < 4 {
		return nil, fmt.Errorf("%w: short compressed record", ErrBadMessage)
	}
	n := binary.BigEndian.Uint32(p)
	if n == 0 || n > MaxChunk {
		return nil, fmt.Errorf("%w: compressed chunk of %d bytes", ErrBadMessage, n)
	}
	out, err := r.dec.DecodeAll(p[4:], r.zbuf[:0])
	if err != nil {
		return nil, fmt.Errorf("%w: zstd: %v", ErrBadMessage, err)
	}
	r.zbuf = out
	if uint32(len(out)) != n {
		return nil, fmt.Errorf("%w: chunk decompressed to %d bytes, announced %d", ErrBadMessage, len(out), n)
	}
	return out, nil
}

// finishMeta applies ownership (as root), mode, xattrs and times.
func (r *receiver) finishMeta(full string, e Entry) error {
	if r.asRoot {
		if err := os.Lchown(full, int(e.UID), int(e.GID)); err != nil {
			return err
		}
	}
	if err := setXattrs(full, e.Xattrs); err != nil {
		return err
	}
	if e.Kind == KindSymlink {
		return nil
	}
	if err := os.Chmod(full, fileMode(e.Mode)); err != nil {
		return err
	}
	t := time.Unix(0, e.MTime)
	return os.Chtimes(full, t, t)
}

// finish checks the end-of-stream counts, then sets directory metadata,
// deepest first, so read-only directories were writable while filled.
func (r *receiver) finish(p []byte) error {
	entries, bytes, err := parseCounts(p)
	if err != nil {
		return err
	}
	if entries != uint64(r.stats.Entries) || bytes != uint64(r.stats.Bytes) {
		return fmt.Errorf("%w: sender counted %d entries (%d bytes), received %d (%d)", ErrTruncated, entries, bytes, r.stats.Entries, r.stats.Bytes)
	}
	for i := len(r.dirs) - 1; i >= 0; i-- {
		e := r.dirs[i]
		if err := r.finishMeta(filepath.Join(r.root, filepath.FromSlash(e.Path)), e); err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
	}
	return nil
}

func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// ReceiveDir waits for the peer's directory stream name and stores it under
// dir according to p. A failure (including a refused entry) ends the
// session; dir may then hold part of the tree, for the caller to remove.
func (s *Session) ReceiveDir(ctx context.Context, name, dir string, p Policy) (DirStats, error) {
	if p.MaxEntries <= 0 || p.MaxEntrySize <= 0 || p.MaxTotalSize <= 0 {
		return DirStats{}, errors.New("transfer: policy limits must be positive")
	}
	st, err := s.Accept(ctx, KindDir, name)
	if err != nil {
		return DirStats{}, err
	}
	defer st.Close()
	stop := s.closeOnDone(ctx, st)
	defer stop()
	stats, err := receiveDir(ctx, st, dir, p, s.dec)
	if err != nil {
		return stats, s.streamFailed(ctx, fmt.Errorf("dir stream %q: %w", name, err))
	}
	return stats, nil
}
