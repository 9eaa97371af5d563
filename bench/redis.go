//go:build linux

package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/migrate"
)

// RedisImage is the lab's redis-server image (scripts/images.sh).
const RedisImage = "dockmove/redis:lab"

const redisValueSize = 1024

// redisValue is key i's value, so every key can be checked afterwards.
func redisValue(i int) string {
	b := make([]byte, redisValueSize)
	x := uint32(i)*2654435761 + 1
	for j := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[j] = 'a' + byte(x%26)
	}
	return string(b)
}

// redisConn is a minimal RESP client: enough for SET and GET.
type redisConn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func dialRedis(ctx context.Context, addr string) (*redisConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &redisConn{c: c, r: bufio.NewReaderSize(c, 64<<10), w: bufio.NewWriterSize(c, 64<<10)}, nil
}

func (rc *redisConn) send(args ...string) {
	fmt.Fprintf(rc.w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(rc.w, "$%d\r\n%s\r\n", len(a), a)
	}
}

// reply reads one reply: a status line or a bulk string.
func (rc *redisConn) reply() (string, error) {
	line, err := rc.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if len(line) < 3 {
		return "", errors.New("redis: short reply")
	}
	switch line[0] {
	case '+':
		return line[1 : len(line)-2], nil
	case '-':
		return "", errors.New("redis: " + line[1:len(line)-2])
	case '$':
		n, err := strconv.Atoi(line[1 : len(line)-2])
		if err != nil || n < 0 {
			return "", fmt.Errorf("redis: nil or bad bulk %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := ioReadFull(rc.r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("redis: unexpected reply %q", line)
}

func ioReadFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// pipeline sends batches of commands and checks each reply with check.
func (rc *redisConn) pipeline(n, batch int, cmd func(i int) []string, check func(i int, reply string) error) error {
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		for i := start; i < end; i++ {
			rc.send(cmd(i)...)
		}
		if err := rc.w.Flush(); err != nil {
			return err
		}
		for i := start; i < end; i++ {
			rep, err := rc.reply()
			if err != nil {
				return err
			}
			if err := check(i, rep); err != nil {
				return err
			}
		}
	}
	return nil
}

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
		var rc *redisConn
		for i := 0; ctx.Err() == nil; i++ {
			start := time.Now()
			for ctx.Err() == nil {
				if rc == nil {
					if rc, _ = dialRedis(ctx, addr); rc == nil {
						time.Sleep(5 * time.Millisecond)
						continue
					}
				}
				rc.c.SetDeadline(time.Now().Add(2 * time.Second))
				k := i % keys
				rc.send("GET", "k"+strconv.Itoa(k))
				got, err := flushReply(rc)
				if err == nil && got != redisValue(k) {
					l.setErr(fmt.Errorf("redis: key %d changed", k))
				}
				if err == nil {
					break
				}
				rc.c.Close()
				rc = nil
			}
			l.record(time.Since(start))
		}
		if rc != nil {
			rc.c.Close()
		}
	}()
	return l
}

func flushReply(rc *redisConn) (string, error) {
	if err := rc.w.Flush(); err != nil {
		return "", err
	}
	return rc.reply()
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
	keys := r.cfg.RedisMiB << 20 / redisValueSize
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
		res.BytesWire = rp.BytesWire + rp.PageBytes
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
	ip, err := r.run(ctx, name, RedisImage,
		"/usr/bin/redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--save", "", "--appendonly", "no")
	if err != nil {
		return "", err
	}
	addr := net.JoinHostPort(ip, "6379")
	var rc *redisConn
	for rc == nil && ctx.Err() == nil {
		if rc, err = dialRedis(ctx, addr); err != nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if rc == nil {
		return "", ctx.Err()
	}
	defer rc.c.Close()
	err = rc.pipeline(keys, 1000, func(i int) []string { return []string{"SET", "k" + strconv.Itoa(i), redisValue(i)} },
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
	rc, err := dialRedis(ctx, addr)
	if err != nil {
		return "check: " + err.Error()
	}
	defer rc.c.Close()
	err = rc.pipeline(keys, 1000, func(i int) []string { return []string{"GET", "k" + strconv.Itoa(i)} },
		func(i int, rep string) error {
			if rep != redisValue(i) {
				return fmt.Errorf("key k%d lost or changed", i)
			}
			return nil
		})
	if err != nil {
		return "check: " + err.Error()
	}
	return "ok"
}
