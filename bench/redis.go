//go:build linux

package bench

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/resp"
	"github.com/dockmove/dockmove/migrate"
)

// redisLoad keeps one client issuing requests, reconnecting when the
// connection breaks, and records the slowest request: the freeze as a
// client of the service sees it. Without written it reads (GET, each
// answer checked); with it, it writes (SET of a new value of the same size
// to each key in turn, the last acknowledged value of each key kept in
// written for the check after the move; a request that failed is sent
// again, the same value).
type redisLoad struct {
	mu      sync.Mutex
	worst   time.Duration
	done    int
	cancel  context.CancelFunc
	stopped chan struct{}
	err     error
}

// redisWrites is what a writing client has had acknowledged, by key, and
// the write it has sent and not seen acknowledged (redis may have applied
// it or not: the check takes either).
type redisWrites struct {
	mu       sync.Mutex
	last     map[int]string
	inflight map[int]string
}

// holds reports whether got is a value key k may hold: the last one
// acknowledged (its loaded value if none was), or the one sent and not
// acknowledged. The caller holds mu.
func (w *redisWrites) holds(k int, got string) bool {
	want, acked := w.last[k]
	if !acked {
		want = resp.Value(k)
	}
	v, sent := w.inflight[k]
	return got == want || sent && got == v
}

// writtenValue is the value a writing client sets key k to in request i:
// resp.Value(k) behind a prefix naming i, so the dataset keeps its size.
func writtenValue(k, i int) string {
	p := "w" + strconv.Itoa(i) + ":"
	return p + resp.Value(k)[len(p):]
}

func startRedisLoad(ctx context.Context, addr string, keys int, written *redisWrites) *redisLoad {
	ctx, cancel := context.WithCancel(ctx)
	l := &redisLoad{cancel: cancel, stopped: make(chan struct{})}
	go func() {
		defer close(l.stopped)
		var rc *resp.Conn
		for i := 0; ctx.Err() == nil; i++ {
			start := time.Now()
			for ctx.Err() == nil {
				if rc == nil {
					if rc, _ = resp.Dial(ctx, addr); rc == nil {
						time.Sleep(5 * time.Millisecond)
						continue
					}
				}
				rc.SetDeadline(time.Now().Add(2 * time.Second))
				k := i % keys
				var err error
				if written == nil {
					var got string
					got, err = rc.Do("GET", "k"+strconv.Itoa(k))
					if err == nil && got != resp.Value(k) {
						l.setErr(fmt.Errorf("redis: key %d changed", k))
					}
				} else {
					v := writtenValue(k, i)
					written.mu.Lock()
					written.inflight[k] = v
					written.mu.Unlock()
					var got string
					got, err = rc.Do("SET", "k"+strconv.Itoa(k), v)
					if err == nil && got != "OK" {
						l.setErr(fmt.Errorf("redis: SET k%d: %s", k, got))
					}
					if err == nil {
						written.mu.Lock()
						written.last[k] = v
						delete(written.inflight, k)
						written.mu.Unlock()
					}
				}
				if err == nil {
					break
				}
				rc.Close()
				rc = nil
			}
			l.record(time.Since(start))
		}
		if rc != nil {
			rc.Close()
		}
	}()
	return l
}

func (l *redisLoad) record(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.worst = max(l.worst, d)
	l.done++
}

func (l *redisLoad) setErr(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = err
	}
}

func (l *redisLoad) requests() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done
}

func (l *redisLoad) stop() (time.Duration, error) {
	l.cancel()
	<-l.stopped
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.worst, l.err
}

// RedisWrites is the redis workload's name when its client writes.
const RedisWrites = "redis-writes"

// redis measures one migration of redis-server under load: a client that
// reads, or with writes one that writes.
func (r *runner) redis(ctx context.Context, strategy string, rep int, writes bool) Result {
	res := Result{Workload: "redis", Strategy: strategy, MemMiB: r.cfg.RedisMiB, Rep: rep}
	var written *redisWrites
	if writes {
		res.Workload, written = RedisWrites, &redisWrites{last: map[int]string{}, inflight: map[int]string{}}
	}
	name := fmt.Sprintf("bench-%s-%s-%d", res.Workload, containerSafe(strategy), rep)
	defer r.remove(name)
	keys := r.cfg.RedisMiB << 20 / resp.ValueSize
	addr, err := r.startRedis(ctx, name, keys)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	load := startRedisLoad(ctx, addr, keys, written)
	for load.requests() < 100 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	if strategy == DockerCheckpoint {
		// Docker's checkpoint refuses established TCP connections: the
		// client disconnects first and reconnects after the restore. Its
		// wait counts from its last answer to its first one after.
		worst, lerr := load.stop()
		start := time.Now()
		var took time.Duration
		took, err = dockerCR(ctx, r.h1, name)
		res.FreezeAgentMs, res.TotalMs = ms(took), ms(took)
		load = startRedisLoad(ctx, addr, keys, written)
		load.record(0)
		load.mu.Lock()
		load.worst = worst
		load.mu.Unlock()
		if err == nil {
			err = lerr
		}
		waitStart := start
		for load.requests() < 2 && ctx.Err() == nil && err == nil {
			time.Sleep(time.Millisecond)
		}
		load.mu.Lock()
		load.worst = max(load.worst, time.Since(waitStart))
		load.mu.Unlock()
	} else {
		cpu := r.dst.CPUTime()
		run := lab.RunSource(ctx, r.h1, r.h2, r.cfg.Bin, name, nil, r.agentArgs(strategy)...)
		res.CPUDestMs, res.CPUSourceMs = ms(r.dst.CPUTime()-cpu), ms(run.CPU)
		err = run.Err
		var rp migrate.Report
		if err == nil {
			err = jsonInto(run.Report, &rp)
		} else {
			err = fmt.Errorf("%v: %s", err, run.Stderr)
		}
		res.FreezeAgentMs, res.TotalMs, res.MemoryCompleteMs = ms(rp.FreezeTime), ms(rp.TotalTime), ms(rp.MemoryTime)
		res.FreezeSteps = freezeSteps(rp.Freeze)
		res.PostCopy = rp.PostCopy
		res.BytesWire = rp.BytesWire + rp.PageBytesWire
	}
	before := load.requests()
	for load.requests() < before+100 && ctx.Err() == nil && err == nil {
		time.Sleep(10 * time.Millisecond)
	}
	worst, lerr := load.stop()
	res.FreezeAppMs = ms(worst)
	if err == nil {
		err = lerr
	}
	if err != nil {
		res.Error = err.Error()
		return res
	}
	res.Check = checkRedis(ctx, addr, keys, written)
	return res
}

// startRedis runs redis-server on host1 and loads keys values.
func (r *runner) startRedis(ctx context.Context, name string, keys int) (string, error) {
	ip, err := r.run(ctx, name, lab.RedisImage,
		"/usr/bin/redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no")
	if err != nil {
		return "", err
	}
	addr := net.JoinHostPort(ip, "6379")
	var rc *resp.Conn
	for rc == nil && ctx.Err() == nil {
		if rc, err = resp.Dial(ctx, addr); err != nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if rc == nil {
		return "", ctx.Err()
	}
	defer rc.Close()
	err = rc.Pipeline(keys, 1000, func(i int) []string { return []string{"SET", "k" + strconv.Itoa(i), resp.Value(i)} },
		func(i int, rep string) error {
			if rep != "OK" {
				return fmt.Errorf("redis: SET k%d: %s", i, rep)
			}
			return nil
		})
	return addr, err
}

// checkRedis reads every key back: its loaded value, or the last one a
// writing client had acknowledged.
func checkRedis(ctx context.Context, addr string, keys int, written *redisWrites) string {
	rc, err := resp.Dial(ctx, addr)
	if err != nil {
		return "check: " + err.Error()
	}
	defer rc.Close()
	ok := func(k int, got string) bool { return got == resp.Value(k) }
	if written != nil {
		written.mu.Lock()
		defer written.mu.Unlock()
		ok = written.holds
	}
	err = rc.Pipeline(keys, 1000, func(i int) []string { return []string{"GET", "k" + strconv.Itoa(i)} },
		func(i int, rep string) error {
			if !ok(i, rep) {
				return fmt.Errorf("key k%d lost or changed", i)
			}
			return nil
		})
	if err != nil {
		return "check: " + err.Error()
	}
	return "ok"
}
