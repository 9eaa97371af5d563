//go:build linux

package main

import (
	"io"
	"log/slog"
	"net"
	"os"
	"time"
)

// held keeps the connections reachable: an unreachable one would be
// closed by its finalizer.
var held []io.Closer

// holdInFlight makes the moment CRIU cannot dump: a Unix connection made
// to a listening socket of this process and written to, not yet accepted
// (as a local client of a database leaves one for an instant). With
// acceptAfterFreeze it accepts the connection once it notices it was
// frozen (a pause of its ticks), as a real server would a moment later;
// otherwise never.
func holdInFlight(path string, acceptAfterFreeze bool, log *slog.Logger) {
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		log.Error("in-flight connection: listen", "err", err)
		return
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		log.Error("in-flight connection: dial", "err", err)
		return
	}
	if _, err := c.Write([]byte("hello before accept")); err != nil {
		log.Error("in-flight connection: write", "err", err)
		return
	}
	held = append(held, ln, c)
	log.Info("a Unix connection is in flight", "path", path)
	last := time.Now()
	for range time.Tick(10 * time.Millisecond) {
		if gap := time.Since(last); acceptAfterFreeze && gap > 300*time.Millisecond {
			s, err := ln.Accept()
			log.Info("frozen: the in-flight connection is accepted", "gap", gap, "err", err)
			if err == nil {
				held = append(held, s)
			}
			return
		}
		last = time.Now()
	}
}
