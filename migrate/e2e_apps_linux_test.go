package migrate_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/lib/pq"

	"github.com/dockmove/dockmove/internal/lab"
	"github.com/dockmove/dockmove/internal/resp"
)

// Real applications, each from Debian's packages in a local image
// (scripts/images.sh), under clients that keep working through the move
// and check afterwards what a user of the application would.

// TestPostgreSQLMoves moves a PostgreSQL server (a postmaster and its
// background processes, shared memory, a Unix socket, a local client
// inserting through that socket from inside the container) while a client
// over TCP commits a transaction after another on one connection. After
// the move: the TCP client's connection is the same one and never failed,
// every transaction it saw committed is there, the local client went on
// (its rows all there), and the server accepts new connections.
func TestPostgreSQLMoves(t *testing.T) {
	for _, strategy := range []string{"stop-and-copy", "lazy"} {
		t.Run(strategy, func(t *testing.T) { postgresMoves(t, setup(t), strategy) })
	}
}

func postgresMoves(t *testing.T, e env, strategy string) {
	ctx := ctxFor(t, 4*time.Minute)
	startDst(t, e)
	name := unique("pg")
	ip := runApp(t, ctx, e, name, lab.PostgresImage)
	dsn := fmt.Sprintf("host=%s port=5432 user=postgres dbname=postgres sslmode=disable connect_timeout=5", ip)
	db := openPostgres(t, ctx, dsn)
	if _, err := db.ExecContext(ctx, "create table rows (n int primary key, at timestamptz default now())"); err != nil {
		t.Fatal(err)
	}
	localBefore := localRows(t, ctx, e.h1, name, 5)

	// One connection for the whole move: its backend's PID tells that it
	// is the same session afterwards.
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var backend int
	if err := conn.QueryRowContext(ctx, "select pg_backend_pid()").Scan(&backend); err != nil {
		t.Fatal(err)
	}
	c := &committer{conn: conn}
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() { c.run(ctx, done); close(stopped) }()
	c.waitFor(ctx, t, 50)

	r, stderr, err := runSrc(ctx, e, name, nil, "--strategy", strategy)
	if err != nil {
		t.Fatalf("migration failed: %v\n%s", err, stderr)
	}
	moved := c.count()
	c.waitFor(ctx, t, moved+50)
	close(done)
	<-stopped
	committed, failure := c.result()
	if failure != nil {
		t.Fatalf("the TCP client's transactions failed across the move (%d committed): %v", len(committed), failure)
	}
	t.Logf("%s: freeze %v; %d transactions committed over one connection, %d after the move", r.Strategy, r.FreezeTime, len(committed), len(committed)-moved)

	var again int
	if err := conn.QueryRowContext(ctx, "select pg_backend_pid()").Scan(&again); err != nil || again != backend {
		t.Fatalf("the connection's backend is %d (%v), was %d: not the same session", again, err, backend)
	}
	// A new connection, over TCP, to host2's copy.
	fresh := openPostgres(t, ctx, dsn)
	var count, max int
	if err := fresh.QueryRowContext(ctx, "select count(*), coalesce(max(n), 0) from rows").Scan(&count, &max); err != nil {
		t.Fatal(err)
	}
	if count != len(committed) || max != committed[len(committed)-1] {
		t.Fatalf("host2 holds %d rows up to %d; the client committed %d up to %d", count, max, len(committed), committed[len(committed)-1])
	}
	// The local client went on through the Unix socket, and every row it
	// saw committed is there.
	localAfter := localRows(t, ctx, e.h2, name, localBefore+20)
	var localCount int
	if err := fresh.QueryRowContext(ctx, "select count(*) from local_rows where n <= $1", localAfter).Scan(&localCount); err != nil || localCount != localAfter {
		t.Fatalf("local rows up to %d: %d present (%v)", localAfter, localCount, err)
	}
	if out, _ := e.h1.Docker(ctx, "ps", "-aq", "--filter", "name=^/"+name+"$"); out != "" {
		t.Fatalf("host1 still has the container: %s", out)
	}
	assertHost2Clean(t, ctx, e, name, false)
}

func openPostgres(t *testing.T, ctx context.Context, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for {
		err := db.PingContext(ctx)
		if err == nil {
			return db
		}
		if ctx.Err() != nil {
			t.Fatalf("PostgreSQL at %s: %v", dsn, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// localRows waits until the container's local client has committed more
// than min rows and returns how many (the last it saw committed).
func localRows(t *testing.T, ctx context.Context, h lab.Host, name string, min int) int {
	t.Helper()
	for {
		out, _ := h.Docker(ctx, "exec", name, "cat", "/tmp/local-last")
		if n, err := strconv.Atoi(out); err == nil && n > min {
			return n
		}
		if ctx.Err() != nil {
			t.Fatalf("the local client on %s committed %q rows, want > %d", h.Name, out, min)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// committer commits one row per transaction on one connection until told
// to stop or a transaction fails, and remembers what committed.
type committer struct {
	conn *sql.Conn
	mu   sync.Mutex
	ok   []int
	err  error
}

func (c *committer) run(ctx context.Context, done <-chan struct{}) {
	for n := 1; ; n++ {
		select {
		case <-done:
			return
		default:
		}
		err := func() error {
			tx, err := c.conn.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "insert into rows (n) values ($1)", n); err != nil {
				tx.Rollback()
				return err
			}
			return tx.Commit()
		}()
		c.mu.Lock()
		if err != nil {
			c.err = fmt.Errorf("transaction %d: %w", n, err)
			c.mu.Unlock()
			return
		}
		c.ok = append(c.ok, n)
		c.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *committer) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.ok)
}

func (c *committer) result() ([]int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.ok...), c.err
}

func (c *committer) waitFor(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	for {
		got, err := c.result()
		if err != nil {
			t.Fatalf("after %d transactions: %v", len(got), err)
		}
		if len(got) >= n {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%d transactions committed, want %d", len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNginxServesASlowDownloadThroughTheMove moves nginx (a master and its
// workers, running as www-data) while a slow client downloads a large file
// from it over one TCP connection: the download completes after the move,
// intact (its SHA-256 is the file's), and nginx answers new requests.
func TestNginxServesASlowDownloadThroughTheMove(t *testing.T) {
	for _, strategy := range []string{"stop-and-copy", "lazy"} {
		t.Run(strategy, func(t *testing.T) { nginxMoves(t, setup(t), strategy) })
	}
}

func nginxMoves(t *testing.T, e env, strategy string) {
	ctx := ctxFor(t, 4*time.Minute)
	startDst(t, e)
	name := unique("web")
	ip := runApp(t, ctx, e, name, lab.NginxImage)
	url := "http://" + net.JoinHostPort(ip, "80") + "/big"
	var want string
	for {
		out, err := e.h1.Docker(ctx, "exec", name, "sh", "-c", "test -f /srv/www/ready && sha256sum /srv/www/big")
		if err == nil {
			want, _, _ = strings.Cut(out, " ")
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the file to serve was never ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The file is ready a moment before nginx listens (the image's script
	// writes it, then starts nginx): seen refused under CI's load.
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, "80"), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("nginx never listened on %s: %v", ip, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The client reads 2 MiB/s: the 16 MiB file takes about 8 s, and
	// the move happens a second in.
	got := make(chan download, 1)
	started := make(chan struct{})
	var read atomic.Int64
	go func() { got <- slowDownload(ctx, url, 2<<20, started, &read) }()
	select {
	case <-started:
	case d := <-got:
		t.Fatalf("download ended before the move, after %d bytes: %v", d.bytes, d.err)
	}
	time.Sleep(time.Second)
	r, stderr, err := runSrc(ctx, e, name, nil, "--strategy", strategy)
	if err != nil {
		t.Fatalf("migration failed: %v\n%s", err, stderr)
	}
	if n := read.Load(); n >= 16<<20 {
		t.Fatalf("the download ended (%d bytes) before the move did: it proves nothing", n)
	}
	d := <-got
	if d.err != nil || d.sum != want || d.bytes != 16<<20 {
		t.Fatalf("download across the move: %d bytes, sha256 %s (want %s), %v", d.bytes, d.sum, want, d.err)
	}
	t.Logf("%s: freeze %v; %d MiB downloaded intact in %v, one connection", r.Strategy, r.FreezeTime, d.bytes>>20, d.took)
	resp, err := http.Get("http://" + net.JoinHostPort(ip, "80") + "/ready")
	if err != nil {
		t.Fatalf("a new request to host2's nginx: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a new request to host2's nginx: %s", resp.Status)
	}
	if out, err := e.h2.Docker(ctx, "exec", name, "sh", "-c", "ps -o user,args | grep -c '^www-data.*worker process'"); err != nil || out != "2" {
		t.Fatalf("nginx's workers on host2 (as www-data): %q, %v", out, err)
	}
	assertHost2Clean(t, ctx, e, name, false)
}

type download struct {
	bytes int64
	sum   string
	took  time.Duration
	err   error
}

// slowDownload fetches url over one connection, reading at most rate
// bytes a second, closes started once the body began and counts what it
// read in progress.
func slowDownload(ctx context.Context, url string, rate int64, started chan<- struct{}, progress *atomic.Int64) download {
	begin := time.Now()
	tr := &http.Transport{DisableKeepAlives: true, ReadBufferSize: 64 << 10}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return download{err: err}
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return download{err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return download{err: fmt.Errorf("GET %s: %s", url, resp.Status)}
	}
	close(started)
	h := sha256.New()
	body := bufio.NewReaderSize(resp.Body, 64<<10)
	var n int64
	for {
		chunk := rate / 10
		m, err := io.CopyN(h, body, chunk)
		n += m
		progress.Store(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return download{bytes: n, err: err, took: time.Since(begin)}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return download{bytes: n, sum: hex.EncodeToString(h.Sum(nil)), took: time.Since(begin)}
}

// runApp starts image on host1's lab network, removed from both hosts when
// the test ends, and returns its address.
func runApp(t *testing.T, ctx context.Context, e env, name, image string) string {
	t.Helper()
	if _, err := e.h1.Docker(ctx, "run", "-d", "--pull", "never", "--name", name, "--network", e.h1.Network, image); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, h := range []lab.Host{e.h1, e.h2} {
			cleanupDocker(h, "rm", "-f", name)
		}
	})
	ip, err := e.h1.Docker(ctx, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+e.h1.Network+"\").IPAddress}}", name)
	if err != nil {
		t.Fatal(err)
	}
	// The address may have lived on host2's switch port in an earlier test.
	if _, err := e.h1.Docker(ctx, "exec", "-u", "root", name, "arping", "-U", "-c", "1", "-I", "eth0", ip); err != nil {
		t.Fatal(err)
	}
	return ip
}

// TestRedisKeepsEveryAcknowledgedWrite moves redis while one client
// writes as fast as a pipeline lets it: batches of 1 KiB values on one
// TCP connection, and a counter incremented once per batch whose replies
// must count 1, 2, 3... (a write lost or applied twice across the move
// breaks the sequence). Afterwards every acknowledged key holds its value
// on host2 and the database holds nothing else.
func TestRedisKeepsEveryAcknowledgedWrite(t *testing.T) {
	for _, strategy := range []string{"stop-and-copy", "lazy"} {
		t.Run(strategy, func(t *testing.T) { redisMoves(t, setup(t), strategy) })
	}
}

func redisMoves(t *testing.T, e env, strategy string) {
	ctx := ctxFor(t, 4*time.Minute)
	startDst(t, e)
	name := unique("redis")
	ip := runApp(t, ctx, e, name, lab.RedisImage)
	addr := net.JoinHostPort(ip, "6379")
	w := &redisWriter{}
	done, stopped := make(chan struct{}), make(chan struct{})
	rc := dialRedis(t, ctx, addr)
	go func() { w.run(rc, done); close(stopped) }()
	w.waitFor(ctx, t, 5000)

	r, stderr, err := runSrc(ctx, e, name, nil, "--strategy", strategy)
	if err != nil {
		t.Fatalf("migration failed: %v\n%s", err, stderr)
	}
	moved := w.count()
	w.waitFor(ctx, t, moved+5000)
	close(done)
	<-stopped
	acked, failure := w.result()
	if failure != nil {
		t.Fatalf("the writer failed across the move (%d keys acknowledged): %v", acked, failure)
	}
	t.Logf("%s: freeze %v; %d keys acknowledged over one connection, %d after the move; %d bytes of pages, %d on the wire", r.Strategy, r.FreezeTime, acked, acked-moved, r.PageBytes, r.PageBytesWire)
	if r.Strategy.PostCopy() && (r.PageBytes <= 0 || r.PageBytesWire <= 0 || r.PageBytesWire > r.PageBytes*4/5) {
		// A heap of 1 KiB values of 26 letters: its pages travel compressed.
		t.Errorf("post-copy sent %d bytes of pages as %d on the wire: want them compressed", r.PageBytes, r.PageBytesWire)
	}

	check := dialRedis(t, ctx, addr)
	if size, err := check.Do("DBSIZE"); err != nil || size != strconv.Itoa(acked+1) {
		t.Fatalf("host2's redis holds %s keys (%v), want the %d acknowledged and the counter", size, err, acked)
	}
	err = check.Pipeline(acked, 1000, func(i int) []string { return []string{"GET", redisKey(i)} },
		func(i int, rep string) error {
			if rep != resp.Value(i) {
				return fmt.Errorf("%s lost or changed", redisKey(i))
			}
			return nil
		})
	if err != nil {
		t.Fatalf("acknowledged writes on host2: %v", err)
	}
	if out, _ := e.h1.Docker(ctx, "ps", "-aq", "--filter", "name=^/"+name+"$"); out != "" {
		t.Fatalf("host1 still has the container: %s", out)
	}
	assertHost2Clean(t, ctx, e, name, false)
}

func dialRedis(t *testing.T, ctx context.Context, addr string) *resp.Conn {
	t.Helper()
	for {
		rc, err := resp.Dial(ctx, addr)
		if err == nil {
			if _, err = rc.Do("PING"); err == nil {
				t.Cleanup(func() { rc.Close() })
				return rc
			}
			rc.Close()
		}
		if ctx.Err() != nil {
			t.Fatalf("redis at %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func redisKey(i int) string { return "key:" + strconv.Itoa(i) }

// redisWriter sets keys in pipelined batches of 50 (a counter INCR
// closing each batch) until told to stop or a reply is wrong, and
// counts the keys acknowledged.
type redisWriter struct {
	mu    sync.Mutex
	acked int
	err   error
}

func (w *redisWriter) run(rc *resp.Conn, done <-chan struct{}) {
	const batch = 50
	for b := 1; ; b++ {
		select {
		case <-done:
			return
		default:
		}
		first := (b - 1) * batch
		for i := first; i < first+batch; i++ {
			rc.Send("SET", redisKey(i), resp.Value(i))
		}
		rc.Send("INCR", "batches")
		err := rc.Flush()
		for i := 0; i < batch && err == nil; i++ {
			var rep string
			if rep, err = rc.Reply(); err == nil && rep != "OK" {
				err = fmt.Errorf("SET %s: %q", redisKey(first+i), rep)
			}
		}
		if err == nil {
			var rep string
			if rep, err = rc.Reply(); err == nil && rep != strconv.Itoa(b) {
				err = fmt.Errorf("INCR after batch %d answered %s: a write was lost or applied twice", b, rep)
			}
		}
		w.mu.Lock()
		if err != nil {
			w.err = fmt.Errorf("batch %d: %w", b, err)
			w.mu.Unlock()
			return
		}
		w.acked = first + batch
		w.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
}

func (w *redisWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acked
}

func (w *redisWriter) result() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acked, w.err
}

func (w *redisWriter) waitFor(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	for {
		got, err := w.result()
		if err != nil {
			t.Fatalf("after %d keys: %v", got, err)
		}
		if got >= n {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%d keys acknowledged, want %d", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
