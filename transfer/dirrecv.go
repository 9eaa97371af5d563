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
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Policy says what a receiver accepts into its target directory. Whatever
// the policy, nothing is ever written outside the target: every file system
// call is made relative to the target's opened directory and cannot resolve
// beyond it (os.Root), entries are created only below directories this
// stream created or that already exist as real directories, and existing
// non-directories are never replaced.
type Policy struct {
	// Rootfs accepts what a container's writable layer holds beyond plain
	// files: overlay whiteouts (character device 0/0), fifos, and absolute
	// symlinks (which resolve inside the container). Default false (CRIU
	// image directories hold none of these).
	Rootfs bool
	// Symlinks accepts symbolic links whose target stays inside the tree
	// (and, with Rootfs, absolute ones). Default false: CRIU opens image
	// files by name and would follow a link out of the directory.
	Symlinks bool
	// Xattrs lists the extended attributes applied: exact names, or
	// prefixes ending in ".". Default none.
	Xattrs []string
	// DropXattrs lists, in the same form, attributes skipped without error:
	// ones that only mean something on the file system that wrote them
	// (overlay's file handles and counters). Others are refused.
	DropXattrs []string
	// MaxEntrySize bounds one file's content. Default 64 GiB; must be positive.
	MaxEntrySize int64
	// MaxTotalSize bounds the stream's content. Default 1 TiB; must be positive.
	MaxTotalSize int64
	// Budget, when set, bounds the content of every stream that shares it
	// together, within each one's MaxTotalSize: several streams that one
	// estimate covers (a migration's volumes) cannot each take all of it.
	// Default nil: the stream is bounded alone.
	Budget *Budget
	// MaxEntries bounds the number of entries. Default 1<<20; must be positive.
	MaxEntries int64
	// KeepFree is space that must stay free on the target's file system:
	// a file that would eat into it fails the stream, so a peer cannot fill
	// the disk whatever sizes it announced. Checked before each file of 1
	// MiB or more and every 64 MiB written. Default 0: no check.
	KeepFree int64
	// MaxRetained bounds the metadata kept until the stream ends
	// (directories' paths, modes and times, set last so that read-only
	// directories can be filled). Default 64 MiB; must be positive.
	MaxRetained int64
	// Devices are the device nodes the stream may carry (beyond Rootfs'
	// whiteouts), each at its path with its number: the receiver's owner
	// decided on them before the stream began. Default none.
	Devices []Device
}

// Budget is content that several directory streams share (Policy.Budget):
// each file takes its size from it as its header arrives, and a file that
// does not fit fails its stream. Safe for streams received at once.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// take takes n bytes, or nothing and false if they do not fit.
func (b *Budget) take(n int64) bool {
	for {
		used := b.used.Load()
		if n > b.limit-used {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

// Device is a device node a Policy accepts.
type Device struct {
	Path         string // relative to the target
	Block        bool
	Major, Minor uint32
}

// ImagePolicy is the policy for CRIU image directories.
func ImagePolicy() Policy {
	return Policy{MaxEntrySize: 64 << 30, MaxTotalSize: 1 << 40, MaxEntries: 1 << 20, MaxRetained: 64 << 20}
}

// RootfsPolicy is the policy for a container's writable layer and volumes:
// whiteouts, symlinks, user attributes, file capabilities and overlay's
// opaque and redirect markers; overlay's other attributes (origin file
// handles, link counts, metacopy) describe the source's file system and
// are dropped.
func RootfsPolicy() Policy {
	p := ImagePolicy()
	p.Rootfs, p.Symlinks = true, true
	p.Xattrs = []string{"user.", "security.capability", "trusted.overlay.opaque", "trusted.overlay.redirect"}
	p.DropXattrs = []string{"trusted.overlay."}
	return p
}

func (p Policy) validate() error {
	if p.MaxEntries <= 0 || p.MaxEntrySize <= 0 || p.MaxTotalSize <= 0 || p.MaxRetained <= 0 || p.KeepFree < 0 || p.Budget != nil && p.Budget.limit < 0 {
		return errors.New("transfer: policy limits must be positive")
	}
	return nil
}

// matchXattr reports whether name is in list (exact names, or prefixes
// ending in ".").
func matchXattr(list []string, name string) bool {
	for _, p := range list {
		if name == p || strings.HasSuffix(p, ".") && strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// receiver applies one directory stream to its target directory.
type receiver struct {
	root      string
	dir       *os.Root // the target; every write goes through it
	policy    Policy
	dec       *zstd.Decoder
	in        *bufio.Reader
	buf       []byte
	zbuf      []byte
	crc       hash.Hash32
	known     map[string]EntryKind // entries of this stream, and checked existing dirs
	dirs      []dirMeta            // directories, to finish after their contents
	retained  int64                // bytes held in known and dirs
	unchecked int64                // content written since the last free-space check
	asRoot    bool
	stats     DirStats
	entries   int64
}

// dirMeta is what a directory still needs once its contents are written.
type dirMeta struct {
	path  string
	mode  uint32
	mtime int64
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
	dir, err := os.OpenRoot(r.root)
	if err != nil {
		return err
	}
	defer dir.Close()
	r.dir = dir
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
	return r.remember(e.Path, e.Kind)
}

// remember records an entry for later checks, within MaxRetained.
func (r *receiver) remember(p string, k EntryKind) error {
	r.retained += int64(len(p)) + 32
	if r.retained > r.policy.MaxRetained {
		return fmt.Errorf("%w: more than %d bytes of paths to keep", ErrTooLarge, r.policy.MaxRetained)
	}
	r.known[p] = k
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
		if r.stats.Bytes > r.policy.MaxTotalSize-int64(e.Size) {
			return fmt.Errorf("%w: stream exceeds %d bytes at %s", ErrTooLarge, r.policy.MaxTotalSize, e.Path)
		}
		if b := r.policy.Budget; b != nil && !b.take(int64(e.Size)) {
			return fmt.Errorf("%w: the streams sharing its budget exceed %d bytes at %s", ErrTooLarge, b.limit, e.Path)
		}
	case KindSymlink:
		if err := r.checkSymlink(e); err != nil {
			return err
		}
	case KindHardlink:
		if err := checkRelPath(e.Link); err != nil || r.known[e.Link] != KindFile {
			return fmt.Errorf("%w: hard link %s -> %q does not name a file of this stream", ErrUnsafeEntry, e.Path, e.Link)
		}
	case KindCharDev, KindBlockDev:
		if e.Kind == KindCharDev && e.DevMajor == 0 && e.DevMinor == 0 && r.policy.Rootfs {
			break // an overlay whiteout
		}
		if !slices.Contains(r.policy.Devices, Device{Path: e.Path, Block: e.Kind == KindBlockDev, Major: e.DevMajor, Minor: e.DevMinor}) {
			return fmt.Errorf("%w: %s %s (%d:%d) is not among the device nodes accepted", ErrUnsafeEntry, e.Kind, e.Path, e.DevMajor, e.DevMinor)
		}
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
	fi, err := r.dir.Lstat(dir)
	if err != nil {
		return fmt.Errorf("%w: parent %s: %v", ErrUnsafeEntry, dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: parent %s is not a directory", ErrUnsafeEntry, dir)
	}
	r.retained += int64(len(dir)) + 32
	r.known[dir] = KindDirectory
	return nil
}

func (r *receiver) checkSymlink(e Entry) error {
	t := e.Link
	switch {
	case !r.policy.Symlinks:
		return fmt.Errorf("%w: symlink %s: this stream carries none", ErrUnsafeEntry, e.Path)
	case t == "" || len(t) > maxPathLen || strings.ContainsRune(t, 0):
		return fmt.Errorf("%w: symlink %s has target %q", ErrUnsafeEntry, e.Path, t)
	case path.IsAbs(t):
		if !r.policy.Rootfs {
			return fmt.Errorf("%w: symlink %s points out to %q", ErrUnsafeEntry, e.Path, t)
		}
		return nil
	}
	if climbsAfterDescending(t) {
		return fmt.Errorf("%w: symlink %s has target %q: \"..\" after a name (which may be a symlink)", ErrUnsafeEntry, e.Path, t)
	}
	resolved := path.Join(path.Dir(e.Path), t)
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return fmt.Errorf("%w: symlink %s points out to %q", ErrUnsafeEntry, e.Path, t)
	}
	return nil
}

// climbsAfterDescending reports whether a relative symlink target has a
// ".." after a name ("a/b/../.."). Cleaning such a target lexically says
// nothing of where it leads: the name may be (or later become) a symlink,
// and ".." then climbs from wherever that leads ("a/up" -> ".." makes
// "a/up/.." the target's parent). With ".." only leading, the climb starts
// from the link's own directory, whose parents are real directories, so
// the lexical check below is exact; the names after it only descend, and
// every symlink they meet was checked the same way.
func climbsAfterDescending(target string) bool {
	named := false
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
		case "..":
			if named {
				return true
			}
		default:
			named = true
		}
	}
	return false
}

func (r *receiver) checkXattrs(e Entry) error {
	for _, x := range e.Xattrs {
		if !matchXattr(r.policy.Xattrs, x.Name) && !matchXattr(r.policy.DropXattrs, x.Name) {
			return fmt.Errorf("%w: %s: xattr %q not accepted", ErrUnsafeEntry, e.Path, x.Name)
		}
	}
	return nil
}

// applied returns the attributes of e the policy applies (dropping the
// ones it skips).
func (r *receiver) applied(xs []Xattr) []Xattr {
	out := xs[:0:0]
	for _, x := range xs {
		if matchXattr(r.policy.Xattrs, x.Name) {
			out = append(out, x)
		}
	}
	return out
}

func (r *receiver) create(e Entry) error {
	e.Xattrs = r.applied(e.Xattrs)
	if e.Kind == KindDirectory {
		return r.createDir(e)
	}
	if _, err := r.dir.Lstat(e.Path); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: already exists", ErrUnsafeEntry)
	}
	var err error
	switch e.Kind {
	case KindFile:
		return r.createFile(e)
	case KindSymlink:
		err = r.dir.Symlink(e.Link, e.Path)
	case KindHardlink:
		return r.dir.Link(e.Link, e.Path)
	default:
		err = r.inParent(e.Path, func(dirfd int, base string) error { return mknodat(dirfd, base, e) })
	}
	if err != nil {
		return err
	}
	if err := r.setOwnerAndXattrs(e); err != nil {
		return err
	}
	if e.Kind == KindSymlink {
		return nil
	}
	return r.setModeAndTimes(e.Path, e.Mode, e.MTime)
}

// createDir makes a directory (or accepts an existing one) and gives it its
// owner and attributes now; its mode and times come in finish.
func (r *receiver) createDir(e Entry) error {
	fi, err := r.dir.Lstat(e.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := r.dir.Mkdir(e.Path, 0o700); err != nil {
			return err
		}
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%w: exists and is not a directory", ErrUnsafeEntry)
	}
	if err := r.setOwnerAndXattrs(e); err != nil {
		return err
	}
	r.retained += int64(len(e.Path)) + 32
	r.dirs = append(r.dirs, dirMeta{path: e.Path, mode: e.Mode, mtime: e.MTime})
	return nil
}

func (r *receiver) createFile(e Entry) error {
	f, err := r.dir.OpenFile(e.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if e.Size >= freeCheckEvery/64 {
		// Small files are checked as their bytes add up (content): a
		// statfs per file would cost the freeze time for nothing.
		err = r.checkFree(int64(e.Size))
	}
	if err == nil {
		err = r.content(f, e.Size)
	}
	if err == nil && r.asRoot {
		err = f.Chown(int(e.UID), int(e.GID))
	}
	if err == nil && len(e.Xattrs) > 0 {
		err = fsetXattrs(f, e.Xattrs)
	}
	if err == nil {
		err = f.Chmod(fileMode(e.Mode))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	r.stats.Bytes += int64(e.Size)
	t := time.Unix(0, e.MTime)
	return r.dir.Chtimes(e.Path, t, t)
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
		if r.unchecked += int64(len(data)); r.unchecked >= freeCheckEvery {
			if err := r.checkFree(int64(left)); err != nil {
				return err
			}
		}
	}
	return nil
}

// freeCheckEvery is how much content may be written between free-space
// checks.
const freeCheckEvery = 64 << 20

// checkFree fails if writing need more bytes would leave less than
// KeepFree on the target's file system.
func (r *receiver) checkFree(need int64) error {
	if r.policy.KeepFree == 0 {
		return nil
	}
	r.unchecked = 0
	free, err := freeSpace(r.root)
	if err != nil {
		return fmt.Errorf("free space of %s: %w", r.root, err)
	}
	if free-need < r.policy.KeepFree {
		return fmt.Errorf("%w: the destination's disk would fill (%d bytes free, %d more to write, %d kept free)", ErrTooLarge, free, need, r.policy.KeepFree)
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

// setOwnerAndXattrs applies ownership (as root) and attributes to the entry
// itself, never to what a symlink points at.
func (r *receiver) setOwnerAndXattrs(e Entry) error {
	if r.asRoot {
		if err := r.dir.Lchown(e.Path, int(e.UID), int(e.GID)); err != nil {
			return err
		}
	}
	if len(e.Xattrs) == 0 {
		return nil
	}
	return r.inParent(e.Path, func(dirfd int, base string) error { return setXattrsAt(dirfd, base, e.Xattrs) })
}

func (r *receiver) setModeAndTimes(p string, mode uint32, mtime int64) error {
	if err := r.dir.Chmod(p, fileMode(mode)); err != nil {
		return err
	}
	t := time.Unix(0, mtime)
	return r.dir.Chtimes(p, t, t)
}

// inParent calls fn with an open descriptor of rel's parent directory
// (resolved inside the target) and rel's last component, for the calls
// os.Root does not offer (mknodat, extended attributes).
func (r *receiver) inParent(rel string, fn func(dirfd int, base string) error) error {
	d, err := r.dir.Open(path.Dir(rel))
	if err != nil {
		return err
	}
	defer d.Close()
	rc, err := d.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd), path.Base(rel)) }); err != nil {
		return err
	}
	return ferr
}

// finish checks the end-of-stream counts, then sets directory modes and
// times, deepest first, so read-only directories were writable while filled.
func (r *receiver) finish(p []byte) error {
	entries, bytes, err := parseCounts(p)
	if err != nil {
		return err
	}
	if entries != uint64(r.stats.Entries) || bytes != uint64(r.stats.Bytes) {
		return fmt.Errorf("%w: sender counted %d entries (%d bytes), received %d (%d)", ErrTruncated, entries, bytes, r.stats.Entries, r.stats.Bytes)
	}
	for i := len(r.dirs) - 1; i >= 0; i-- {
		d := r.dirs[i]
		if err := r.setModeAndTimes(d.path, d.mode, d.mtime); err != nil {
			return fmt.Errorf("%s: %w", d.path, err)
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
	if err := p.validate(); err != nil {
		return DirStats{}, err
	}
	actx, cancel := s.PeerWait(ctx, s.cfg.PeerWaitTimeout,
		fmt.Errorf("%w: the peer did not open dir stream %q within %v", ErrIdle, name, s.cfg.PeerWaitTimeout))
	st, err := s.Accept(actx, KindDir, name)
	if err != nil && actx.Err() != nil && ctx.Err() == nil {
		err = context.Cause(actx)
	}
	cancel()
	if err != nil {
		return DirStats{}, err
	}
	defer st.Close()
	stop := s.closeOnDone(ctx, st)
	defer stop()
	stats, err := receiveDir(ctx, newIdleConn(st, s.cfg), dir, p, s.dec)
	if err != nil {
		return stats, s.streamFailed(ctx, fmt.Errorf("dir stream %q: %w", name, err))
	}
	return stats, nil
}
