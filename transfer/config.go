package transfer

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Config configures one end of a session.
type Config struct {
	// TLS is the mutual-TLS configuration, from ServerTLS or ClientTLS.
	// Required unless InsecurePlaintext is set.
	TLS *tls.Config
	// InsecurePlaintext runs the session without TLS: no encryption and no
	// authentication of the peer. For debugging only. Default false.
	InsecurePlaintext bool
	// AllowPeers, when set, names the only peers this end talks to (a
	// server's sources, a client's destinations): a peer whose certificate
	// carries none of these names (its common name, a DNS name or an IP
	// address) is refused with that reason, even though the CA signed it.
	// Default none: any peer the CA signed. Needs TLS.
	AllowPeers []string
	// Hello is what this end announces in the handshake. Its Protocol is
	// set to ProtocolVersion when zero.
	Hello Hello
	// InDoubtFor, on a server, names the migrations from the source whose
	// certificate proves peer (its common name) that this end holds in
	// doubt; they go in the Hello it answers that source with.
	InDoubtFor func(peer string) []string
	// HandshakeTimeout bounds the TLS handshake, the Hello exchange and the
	// first frame of every incoming stream. Default 15s; must be positive.
	HandshakeTimeout time.Duration
	// MaxFrame is the largest control frame accepted. Default
	// DefaultMaxFrame; must be at least 4 KiB.
	MaxFrame int
	// CompressLevel is the zstd level (1 fastest to 22 best; klauspost/zstd
	// maps it onto its four speeds) for directory streams. Default 1; zero
	// sends directory contents uncompressed.
	CompressLevel int
	// ChunkSize is the unit directory-stream contents are compressed and
	// checked in. Default 256 KiB; at most MaxChunk.
	ChunkSize int
	// StreamWindow is the yamux receive window per stream: it bounds the
	// bytes in flight, so throughput is at most StreamWindow per round trip.
	// Default 4 MiB (larger windows measured slower on loopback, their
	// buffers falling out of cache); at least 256 KiB.
	StreamWindow uint32
	// KeepAlive is the yamux ping period that detects a dead peer. Default
	// 5s; zero disables keepalives.
	KeepAlive time.Duration
	// DeadPeerTimeout is how long a ping may go unanswered, or a write stay
	// blocked, before the peer is declared gone: with KeepAlive it bounds
	// how long a cut link goes unnoticed. Default 10s; must be positive.
	DeadPeerTimeout time.Duration
	// StreamIdleTimeout is how long a directory stream may make no progress
	// (nothing read by a receiver, nothing written by a sender) before it
	// fails: a peer that is alive but silent must not hold a stream, and
	// what waits on it, forever. Default 2m; must be positive.
	StreamIdleTimeout time.Duration
	// StreamMinRate is the least a directory stream must carry, in bytes
	// per second, over each StreamIdleTimeout, once it has run that long:
	// a peer trickling a byte now and then (never idle) must not hold a
	// stream, and what waits on it, for ever. Default 16 KiB/s (a link of
	// 1 Mbit/s carries eight times that); 0 turns the floor off.
	StreamMinRate int64
	// PeerWaitTimeout bounds how long a receiver waits for a directory
	// stream its peer is due to open (the peer may be dumping a large
	// container meanwhile). Default 10m; must be positive.
	PeerWaitTimeout time.Duration
	// Logger receives connection events (rejected peers, teardown causes).
	// Nil discards them.
	Logger *slog.Logger
	// Progress, if set, is called as directory streams are sent, with the
	// stream's name and its content bytes sent so far. It runs on the
	// sending path: keep it cheap. Default nil.
	Progress func(stream string, bytes int64)
}

// MaxChunk is the largest directory-stream chunk a receiver accepts.
const MaxChunk = 4 << 20

// DefaultConfig returns the documented defaults, with no TLS set.
func DefaultConfig() Config {
	return Config{
		HandshakeTimeout: 15 * time.Second,
		MaxFrame:         DefaultMaxFrame,
		CompressLevel:    1,
		ChunkSize:        256 << 10,
		StreamWindow:     4 << 20,
		KeepAlive:        5 * time.Second,
		DeadPeerTimeout:  10 * time.Second,

		StreamIdleTimeout: 2 * time.Minute,
		StreamMinRate:     16 << 10,
		PeerWaitTimeout:   10 * time.Minute,
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if err := c.ValidateSettings(); err != nil {
		return err
	}
	hello := c.Hello
	if hello.Protocol == 0 {
		hello.Protocol = ProtocolVersion
	}
	if err := hello.Validate(); err != nil {
		return fmt.Errorf("transfer: hello: %w", err)
	}
	return nil
}

// ValidateSettings checks everything but the Hello, which an agent fills in
// only once it knows its host: agents call it when they are configured, so
// a bad setting (a zstd level of 30) stops them at once instead of failing
// every session later.
func (c Config) ValidateSettings() error {
	switch {
	case c.TLS == nil && !c.InsecurePlaintext:
		return errors.New("transfer: no TLS configuration (plaintext needs InsecurePlaintext)")
	case c.TLS != nil && c.InsecurePlaintext:
		return errors.New("transfer: both TLS and InsecurePlaintext set")
	case len(c.AllowPeers) > 0 && c.InsecurePlaintext:
		return errors.New("transfer: an allow-list of peers needs TLS (plaintext has no identities)")
	case c.HandshakeTimeout <= 0:
		return errors.New("transfer: handshake timeout must be positive")
	case c.MaxFrame < 4<<10:
		return fmt.Errorf("transfer: max frame %d below 4 KiB", c.MaxFrame)
	case c.CompressLevel < 0 || c.CompressLevel > 22:
		return fmt.Errorf("transfer: zstd level %d outside 0-22", c.CompressLevel)
	case c.ChunkSize < 4<<10 || c.ChunkSize > MaxChunk:
		return fmt.Errorf("transfer: chunk size %d outside 4 KiB - %d", c.ChunkSize, MaxChunk)
	case c.StreamWindow < 256<<10:
		return fmt.Errorf("transfer: stream window %d below 256 KiB", c.StreamWindow)
	case c.KeepAlive < 0:
		return errors.New("transfer: negative keepalive")
	case c.DeadPeerTimeout <= 0:
		return errors.New("transfer: dead-peer timeout must be positive")
	case c.StreamIdleTimeout <= 0:
		return errors.New("transfer: stream idle timeout must be positive")
	case c.StreamMinRate < 0:
		return errors.New("transfer: negative stream rate floor")
	case c.PeerWaitTimeout <= 0:
		return errors.New("transfer: peer wait timeout must be positive")
	}
	return nil
}

func (c Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
