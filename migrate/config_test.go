//go:build linux

package migrate

import (
	"strings"
	"testing"
)

// A bad session setting stops an agent when it is configured, naming the
// setting, instead of failing every session later (migrate-dst used to
// say "listening" and then hang up on every source, silently).
func TestConfigsRefuseBadSessionSettings(t *testing.T) {
	dst := DefaultDestConfig()
	dst.WorkDir, dst.RuntimeState = "/w", "/r"
	dst.Transfer.InsecurePlaintext = true
	if err := dst.Validate(); err != nil {
		t.Fatalf("good destination config refused: %v", err)
	}
	dst.Transfer.CompressLevel = 30
	if err := dst.Validate(); err == nil || !strings.Contains(err.Error(), "zstd level 30") {
		t.Fatalf("destination with zstd level 30: %v", err)
	}

	src := DefaultSourceConfig()
	src.To, src.Container, src.WorkDir = "h:7070", "web", "/w"
	src.Transfer.InsecurePlaintext = true
	if err := src.Validate(); err != nil {
		t.Fatalf("good source config refused: %v", err)
	}
	src.Transfer.ChunkSize = 1
	if err := src.Validate(); err == nil || !strings.Contains(err.Error(), "chunk size") {
		t.Fatalf("source with a 1-byte chunk: %v", err)
	}
}
