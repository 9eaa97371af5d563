package transfer

import "errors"

// Sentinel errors of the transfer layer. Errors returned by this package wrap
// one of these (test with errors.Is) and name the operation that failed.
var (
	// ErrFrameTooLarge: a control frame announced more bytes than allowed.
	ErrFrameTooLarge = errors.New("transfer: frame too large")
	// ErrUnknownMessage: a control frame carried a type this version does
	// not know.
	ErrUnknownMessage = errors.New("transfer: unknown message type")
	// ErrBadMessage: a control message did not decode strictly (unknown
	// fields, trailing data, wrong types, failed validation).
	ErrBadMessage = errors.New("transfer: malformed message")
	// ErrUnexpectedMessage: a valid message arrived where another was due.
	ErrUnexpectedMessage = errors.New("transfer: unexpected message")
	// ErrIncompatible: the peers cannot work together; the message names
	// what differs.
	ErrIncompatible = errors.New("transfer: incompatible peer")
	// ErrRejected: the peer refused us and said why.
	ErrRejected = errors.New("transfer: rejected by peer")
	// ErrAuth: TLS authentication failed.
	ErrAuth = errors.New("transfer: authentication failed")
	// ErrUnsafeEntry: a directory stream entry would write outside its
	// target, or is of a kind the receiving policy refuses.
	ErrUnsafeEntry = errors.New("transfer: unsafe directory entry")
	// ErrTooLarge: an entry or a whole directory stream exceeds its limit.
	ErrTooLarge = errors.New("transfer: directory stream over its limit")
	// ErrChecksum: an entry's content does not match its checksum.
	ErrChecksum = errors.New("transfer: checksum mismatch")
	// ErrTruncated: a stream ended before its end marker.
	ErrTruncated = errors.New("transfer: stream truncated")
	// ErrIdle: a stream made no progress for Config.StreamIdleTimeout, or
	// carried less than Config.StreamMinRate over that time.
	ErrIdle = errors.New("transfer: stream idle")
	// ErrClosed: the session was closed; Session.Err gives the first cause.
	ErrClosed = errors.New("transfer: session closed")
)

// ErrPeer wraps the reason a peer gave (an Error message) for tearing the
// session down.
var ErrPeer = errors.New("transfer: peer failed")
