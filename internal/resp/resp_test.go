package resp

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"testing"
)

// fakeServer answers each command it reads with the next canned reply and
// records the commands as the bytes the client wrote.
func fakeServer(t *testing.T, replies ...string) (addr string, got <-chan string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	out := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		var seen strings.Builder
		for _, reply := range replies {
			// A command: "*N\r\n" then N bulk strings of two lines each.
			head, err := r.ReadString('\n')
			if err != nil {
				break
			}
			seen.WriteString(head)
			var n int
			for _, ch := range head[1 : len(head)-2] {
				n = n*10 + int(ch-'0')
			}
			for i := 0; i < 2*n; i++ {
				line, _ := r.ReadString('\n')
				seen.WriteString(line)
			}
			io.WriteString(c, reply)
		}
		out <- seen.String()
	}()
	return ln.Addr().String(), out
}

func TestRepliesWithFakeServer(t *testing.T) {
	addr, got := fakeServer(t, "+OK\r\n", ":42\r\n", "$5\r\nhello\r\n", "-ERR wrong type\r\n", "$-1\r\n")
	rc, err := Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	for _, c := range []struct {
		args    []string
		want    string
		wantErr string
	}{
		{[]string{"SET", "k", "v"}, "OK", ""},
		{[]string{"INCR", "n"}, "42", ""},
		{[]string{"GET", "k"}, "hello", ""},
		{[]string{"LPUSH", "k", "x"}, "", "redis: ERR wrong type"},
		{[]string{"GET", "missing"}, "", "nil or bad bulk"},
	} {
		rep, err := rc.Do(c.args...)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%v: reply %q, error %v; want an error with %q", c.args, rep, err, c.wantErr)
			}
			continue
		}
		if err != nil || rep != c.want {
			t.Errorf("%v: %q, %v; want %q", c.args, rep, err, c.want)
		}
	}
	rc.Close()
	wire := <-got
	if !strings.HasPrefix(wire, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$4\r\nINCR\r\n") {
		t.Errorf("commands on the wire: %q", wire)
	}
}

func TestPipelineChecksEveryReplyWithFakeServer(t *testing.T) {
	addr, _ := fakeServer(t, "+OK\r\n", "+OK\r\n", "+QUEUED\r\n", "+OK\r\n")
	rc, err := Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var checked []int
	err = rc.Pipeline(4, 2, func(i int) []string { return []string{"SET", "k", "v"} },
		func(i int, rep string) error {
			checked = append(checked, i)
			if rep != "OK" {
				return io.ErrUnexpectedEOF
			}
			return nil
		})
	if err != io.ErrUnexpectedEOF || len(checked) != 3 {
		t.Fatalf("pipeline stopped after %v with %v; want it to stop at the third reply", checked, err)
	}
}

func TestValuesDifferAndKeepTheirSize(t *testing.T) {
	seen := map[string]int{}
	for i := range 1000 {
		v := Value(i)
		if len(v) != ValueSize || v != Value(i) {
			t.Fatalf("value %d: %d bytes, or not the same twice", i, len(v))
		}
		if j, ok := seen[v]; ok {
			t.Fatalf("keys %d and %d share a value", j, i)
		}
		seen[v] = i
	}
}
