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
	"path/filepath"
	"slices"
	"time"

	"github.com/klauspost/compress/zstd"
)

// DirStats summarises one directory stream.
type DirStats struct {
	Entries   int64         // entries sent or received
	Bytes     int64         // file content bytes, uncompressed
	WireBytes int64         // bytes on the stream, after compression and framing
	Duration  time.Duration // from the first record to the acknowledgement
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// countingWriter counts what reaches the stream.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// sender writes one directory tree as a directory stream.
type sender struct {
	out   *bufio.Writer
	wire  *countingWriter
	pipe  *pipeline
	crc   hash.Hash32
	links map[fileID]string // first path of each multiply-linked file
	stats DirStats
	// progress, if set, gets the content bytes written so far.
	progress func(int64)
	sent     int64
}

// fileID identifies a file across hard links.
type fileID struct{ dev, ino uint64 }

// sendDir streams the tree under root to rw and waits for the receiver's
// acknowledgement. enc nil sends contents uncompressed.
// Top-level names in skip are left out.
func sendDir(ctx context.Context, rw io.ReadWriter, root string, skip []string, enc *zstd.Encoder, chunkSize int, progress func(int64)) (DirStats, error) {
	start := time.Now()
	wire := &countingWriter{w: rw}
	s := &sender{
		progress: progress,
		out:      bufio.NewWriterSize(wire, 16<<10),
		wire:     wire,
		pipe:     newPipeline(enc, chunkSize),
		crc:      crc32.New(castagnoli),
		links:    map[fileID]string{},
	}
	defer s.pipe.close()
	err := filepath.WalkDir(root, func(full string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if full == root {
			return nil
		}
		if filepath.Dir(full) == filepath.Clean(root) && slices.Contains(skip, d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		return s.sendEntry(full, root)
	})
	if err == nil {
		err = writeRecord(s.out, recStreamEnd, countsPayload(uint64(s.stats.Entries), uint64(s.stats.Bytes)))
	}
	if err == nil {
		err = s.out.Flush()
	}
	if err != nil {
		return s.stats, fmt.Errorf("send %s: %w", root, err)
	}
	if err := s.awaitAck(rw); err != nil {
		return s.stats, fmt.Errorf("send %s: %w", root, err)
	}
	s.stats.WireBytes = wire.n
	s.stats.Duration = time.Since(start)
	return s.stats, nil
}

func (s *sender) sendEntry(full, root string) error {
	rel, err := filepath.Rel(root, full)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(full)
	if err != nil {
		return err
	}
	e, id, skip, err := entryFromInfo(full, filepath.ToSlash(rel), fi)
	if err != nil || skip {
		return err
	}
	if e.Kind == KindFile && id != (fileID{}) {
		if first, ok := s.links[id]; ok {
			e.Kind, e.Link, e.Size, e.Xattrs = KindHardlink, first, 0, nil
		} else {
			s.links[id] = e.Path
		}
	}
	hdr := e.marshal()
	s.crc.Reset()
	s.crc.Write(hdr)
	if err := writeRecord(s.out, recEntry, hdr); err != nil {
		return err
	}
	if e.Kind == KindFile {
		if err := s.sendContent(full, e.Size); err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
	}
	end := binary.BigEndian.AppendUint32(nil, s.crc.Sum32())
	end = binary.BigEndian.AppendUint64(end, e.Size)
	s.stats.Entries++
	return writeRecord(s.out, recEntryEnd, end)
}

// sendContent reads the file in chunks, checksums them in order, has the
// pipeline compress them in parallel and writes the records in order.
func (s *sender) sendContent(full string, size uint64) error {
	f, err := os.Open(full)
	if err != nil {
		return err
	}
	defer f.Close()
	out := s.pipe.start(func(j *job) error {
		if s.progress != nil {
			s.sent += int64(j.n)
			s.progress(s.sent)
		}
		return writeRecord(s.out, j.typ, j.payload)
	})
	var sent uint64
	for {
		j := s.pipe.get()
		n, err := io.ReadFull(f, j.raw)
		if sent += uint64(n); sent > size {
			err = fmt.Errorf("file grew past %d bytes while being sent", size)
		}
		if n > 0 && sent <= size {
			s.crc.Write(j.raw[:n])
			out.submit(j, n)
		} else {
			s.pipe.put(j)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil || out.failed() {
			return errors.Join(err, out.wait())
		}
	}
	if err := out.wait(); err != nil {
		return err
	}
	if sent != size {
		return fmt.Errorf("file shrank to %d of %d bytes while being sent", sent, size)
	}
	s.stats.Bytes += int64(size)
	return nil
}

func (s *sender) awaitAck(r io.Reader) error {
	typ, p, err := readRecord(r, nil)
	if err != nil {
		return fmt.Errorf("waiting for acknowledgement: %w", err)
	}
	switch typ {
	case recNak:
		return fmt.Errorf("%w: %s", ErrRejected, truncate(string(p), maxText))
	case recAck:
		entries, bytes, err := parseCounts(p)
		if err != nil {
			return err
		}
		if entries != uint64(s.stats.Entries) || bytes != uint64(s.stats.Bytes) {
			return fmt.Errorf("receiver stored %d entries (%d bytes), sent %d (%d)", entries, bytes, s.stats.Entries, s.stats.Bytes)
		}
		return nil
	}
	return fmt.Errorf("%w: record %q instead of an acknowledgement", ErrBadMessage, typ)
}

// SendDir streams the tree under dir to the peer, which stores it with
// ReceiveDir(name, ...), and returns once the peer has stored and verified
// all of it. A failure ends the session.
func (s *Session) SendDir(ctx context.Context, name, dir string) (DirStats, error) {
	return s.SendDirSkipping(ctx, name, dir, nil)
}

// SendDirSkipping is SendDir leaving out the top-level entries named in
// skip (a CRIU image directory's local "parent" link, for one).
func (s *Session) SendDirSkipping(ctx context.Context, name, dir string, skip []string) (DirStats, error) {
	st, err := s.Open(ctx, KindDir, name)
	if err != nil {
		return DirStats{}, err
	}
	defer st.Close()
	stop := s.closeOnDone(ctx, st)
	defer stop()
	var progress func(int64)
	if s.cfg.Progress != nil {
		progress = func(n int64) { s.cfg.Progress(name, n) }
	}
	stats, err := sendDir(ctx, idleConn{Conn: st, d: s.cfg.StreamIdleTimeout}, dir, skip, s.enc, s.cfg.ChunkSize, progress)
	if err != nil {
		return stats, s.streamFailed(ctx, fmt.Errorf("dir stream %q: %w", name, err))
	}
	return stats, nil
}

// streamFailed ends the session with err unless the session had already
// ended or ctx was cancelled, and returns the cause to report. An I/O error
// is often the echo of the peer's failure, whose reason is on its way over
// the control stream; it is given a moment to arrive.
func (s *Session) streamFailed(ctx context.Context, err error) error {
	if isRefusal(err) {
		// Diagnosed here from the bytes themselves (or the peer's refusal
		// of ours): the cause, even if the peer, told of it, has already
		// torn the session down with its echo.
		s.Fail(err)
		return err
	}
	if !isProtocolError(err) {
		select {
		case <-s.done:
		case <-time.After(500 * time.Millisecond):
		}
	}
	if serr := s.Err(); serr != nil {
		return serr
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", err, ctx.Err())
	}
	s.Fail(err)
	return err
}

// isRefusal reports whether err is a stream's content refused, by this
// side or (ErrRejected) by the peer.
func isRefusal(err error) bool {
	for _, e := range []error{ErrUnsafeEntry, ErrTooLarge, ErrChecksum, ErrBadMessage, ErrRejected, ErrFrameTooLarge} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// isProtocolError reports whether err is one this package diagnosed itself
// (a refused entry, a bad record), as opposed to an I/O failure.
func isProtocolError(err error) bool {
	return isRefusal(err) || errors.Is(err, ErrTruncated) || errors.Is(err, ErrIdle)
}
