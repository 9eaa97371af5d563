//go:build linux

package main

import (
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
)

// held keeps the connections reachable: an unreachable one would be
// closed by its finalizer.
var held []io.Closer

// holdInFlight makes the moment CRIU cannot dump: a Unix connection made
// to a listening socket of this process and written to, not yet accepted
// (as a local client of a database leaves one for an instant). With
// acceptOnSignal it accepts the connection when it gets SIGUSR2, as a
// real server would a moment later; otherwise never.
func holdInFlight(path string, acceptOnSignal bool, log *slog.Logger) {
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
	if !acceptOnSignal {
		return
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR2)
	<-sig
	s, err := ln.Accept()
	log.Info("the in-flight connection is accepted", "err", err)
	if err == nil {
		held = append(held, s)
	}
}
