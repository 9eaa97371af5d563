package main

import "testing"

// Plaintext mode (no authentication) may listen only where nobody else can
// connect.
func TestLoopbackOnly(t *testing.T) {
	for addr, want := range map[string]bool{
		":7070": false, "0.0.0.0:7070": false, "10.0.0.1:7070": false, "[::]:7070": false,
		"127.0.0.1:7070": true, "[::1]:7070": true, "localhost:7070": true, "nonsense": false,
	} {
		if got := loopbackOnly(addr); got != want {
			t.Errorf("loopbackOnly(%q) = %v, want %v", addr, got, want)
		}
	}
}
