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

// redisLoad keeps one client issuing GET and SET, reconnecting when the
// connection breaks, and records the slowest request: the freeze as a
// client of the service sees it.
type redisLoad struct {
	mu      sync.Mutex
	worst   time.Duration
	done    int
	cancel  context.CancelFunc
	stopped chan struct{}
	err     error
}

func startRedisLoad(ctx context.Context, addr string, keys int) *redisLoad {
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
				got, err := rc.Do("GET", "k"+strconv.Itoa(k))
				if err == nil && got != resp.Value(k) {
					l.setErr(fmt.Errorf("redis: key %d changed", k))
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

// redis measures one migration of redis-server under load.
func (r *runner) redis(ctx context.Context, strategy string, rep int) Result {
	res := Result{Workload: "redis", Strategy: strategy, MemMiB: r.cfg.RedisMiB, Rep: rep}
	name := fmt.Sprintf("bench-redis-%s-%d", containerSafe(strategy), rep)
	defer r.remove(name)
	keys := r.cfg.RedisMiB << 20 / resp.ValueSize
	addr, err := r.startRedis(ctx, name, keys)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	load := startRedisLoad(ctx, addr, keys)
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
		load = startRedisLoad(ctx, addr, keys)
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
		run := lab.RunSource(ctx, r.h1, r.h2, r.cfg.Bin, name, nil, agentArgs(strategy)...)
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
	res.Check = checkRedis(ctx, addr, keys)
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

// checkRedis reads every key back.
func checkRedis(ctx context.Context, addr string, keys int) string {
	rc, err := resp.Dial(ctx, addr)
	if err != nil {
		return "check: " + err.Error()
	}
	defer rc.Close()
	err = rc.Pipeline(keys, 1000, func(i int) []string { return []string{"GET", "k" + strconv.Itoa(i)} },
		func(i int, rep string) error {
			if rep != resp.Value(i) {
				return fmt.Errorf("key k%d lost or changed", i)
			}
			return nil
		})
	if err != nil {
		return "check: " + err.Error()
	}
	return "ok"
}
