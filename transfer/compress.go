package transfer

import (
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
)

// job is one chunk on its way through the pipeline.
type job struct {
	raw     []byte // the chunk buffer; raw[:n] holds the data
	n       int
	typ     byte   // recData or recZstd, set by the worker
	payload []byte // what to write: raw[:n] or zbuf
	zbuf    []byte
	done    chan struct{}
}

// pipeline compresses a file's chunks on several goroutines while the
// sender reads and checksums the next ones, and hands them to a writer in
// their original order. Its buffers are allocated once per directory
// stream and recycled.
type pipeline struct {
	enc  *zstd.Encoder
	free chan *job
	work chan *job
	wg   sync.WaitGroup
}

func newPipeline(enc *zstd.Encoder, chunk int) *pipeline {
	workers := 1
	if enc != nil {
		workers = min(runtime.GOMAXPROCS(0), 4)
	}
	p := &pipeline{enc: enc, free: make(chan *job, 2*workers+2), work: make(chan *job, 2*workers+2)}
	for range cap(p.free) {
		p.free <- &job{raw: make([]byte, chunk)}
	}
	for range workers {
		p.wg.Add(1)
		go p.worker()
	}
	return p
}

func (p *pipeline) worker() {
	defer p.wg.Done()
	c := compressor{enc: p.enc}
	for j := range p.work {
		j.typ, j.payload = c.chunk(j.raw[:j.n], &j.zbuf)
		close(j.done)
	}
}

func (p *pipeline) get() *job  { return <-p.free }
func (p *pipeline) put(j *job) { p.free <- j }

// close stops the workers.
func (p *pipeline) close() {
	close(p.work)
	p.wg.Wait()
}

// output is one file's ordered stream of jobs to a writer.
type output struct {
	p       *pipeline
	ordered chan *job
	errc    chan error
	err     error
	bad     atomic.Bool
	waited  bool
}

// start begins writing the jobs submitted to the returned output with
// write, in submission order.
func (p *pipeline) start(write func(*job) error) *output {
	o := &output{p: p, ordered: make(chan *job, cap(p.free)), errc: make(chan error, 1)}
	go func() {
		var err error
		for j := range o.ordered {
			<-j.done
			if err == nil {
				if err = write(j); err != nil {
					o.bad.Store(true)
				}
			}
			p.put(j)
		}
		o.errc <- err
	}()
	return o
}

// submit queues j (holding n bytes) for compression and writing.
func (o *output) submit(j *job, n int) {
	j.n = n
	j.done = make(chan struct{})
	o.ordered <- j
	o.p.work <- j
}

// failed reports whether a write has failed, so the reader can stop early.
func (o *output) failed() bool { return o.bad.Load() }

// wait flushes the queue and returns the first write error.
func (o *output) wait() error {
	if !o.waited {
		o.waited = true
		close(o.ordered)
		o.err = <-o.errc
	}
	return o.err
}

// compressor zstd-compresses chunks, sending a chunk raw when compression
// does not pay. After incompressible chunks it skips attempts with a
// doubling back-off (up to 15 chunks), so random data costs almost no
// compression CPU while page-like data is always compressed.
type compressor struct {
	enc    *zstd.Encoder
	skip   int
	misses int
}

func (c *compressor) chunk(raw []byte, buf *[]byte) (byte, []byte) {
	if c.enc == nil {
		return recData, raw
	}
	if c.skip > 0 {
		c.skip--
		return recData, raw
	}
	b := binary.BigEndian.AppendUint32((*buf)[:0], uint32(len(raw)))
	b = c.enc.EncodeAll(raw, b)
	*buf = b
	if len(b)-4 >= len(raw)-len(raw)/32 {
		c.misses = min(c.misses+1, 4)
		c.skip = 1<<c.misses - 1
		return recData, raw
	}
	c.misses = 0
	return recZstd, b
}
