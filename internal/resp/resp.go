// Package resp is a minimal client of Redis's protocol (RESP): commands as
// arrays of bulk strings, replies that are status lines, errors or bulk
// strings. Enough for the lab's redis tests and the bench (SET, GET,
// DBSIZE), nothing more.
package resp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// Conn is one connection to a redis server.
type Conn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

// Dial connects to the server at addr.
func Dial(ctx context.Context, addr string) (*Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &Conn{c: c, r: bufio.NewReaderSize(c, 64<<10), w: bufio.NewWriterSize(c, 64<<10)}, nil
}

// Close closes the connection.
func (rc *Conn) Close() error { return rc.c.Close() }

// SetDeadline bounds the next reads and writes.
func (rc *Conn) SetDeadline(t time.Time) error { return rc.c.SetDeadline(t) }

// Send buffers one command.
func (rc *Conn) Send(args ...string) {
	fmt.Fprintf(rc.w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(rc.w, "$%d\r\n%s\r\n", len(a), a)
	}
}

// Flush writes the buffered commands.
func (rc *Conn) Flush() error { return rc.w.Flush() }

// Reply reads one reply: a status line, an integer or a bulk string (an
// error reply is returned as an error).
func (rc *Conn) Reply() (string, error) {
	line, err := rc.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if len(line) < 3 {
		return "", errors.New("redis: short reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1 : len(line)-2], nil
	case '-':
		return "", errors.New("redis: " + line[1:len(line)-2])
	case '$':
		n, err := strconv.Atoi(line[1 : len(line)-2])
		if err != nil || n < 0 {
			return "", fmt.Errorf("redis: nil or bad bulk %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rc.r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("redis: unexpected reply %q", line)
}

// Do sends one command and reads its reply.
func (rc *Conn) Do(args ...string) (string, error) {
	rc.Send(args...)
	if err := rc.Flush(); err != nil {
		return "", err
	}
	return rc.Reply()
}

// Pipeline sends n commands (cmd(i)) in batches and checks each reply
// with check.
func (rc *Conn) Pipeline(n, batch int, cmd func(i int) []string, check func(i int, reply string) error) error {
	for start := 0; start < n; start += batch {
		end := min(start+batch, n)
		for i := start; i < end; i++ {
			rc.Send(cmd(i)...)
		}
		if err := rc.Flush(); err != nil {
			return err
		}
		for i := start; i < end; i++ {
			rep, err := rc.Reply()
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

// ValueSize is the size of Value's values.
const ValueSize = 1024

// Value is key i's value in the tests' and the benchmark's data sets:
// ValueSize letters from a xorshift seeded by i, different for every key,
// so each can be checked after a move.
func Value(i int) string {
	b := make([]byte, ValueSize)
	x := uint32(i)*2654435761 + 1
	for j := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[j] = 'a' + byte(x%26)
	}
	return string(b)
}
