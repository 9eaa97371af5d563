package transfer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
)

// MsgType identifies a control message on the wire. The numbers are part of
// the protocol (transfer/spec.md) and never reused.
type MsgType uint16

const (
	MsgStreamOpen MsgType = 1 // first frame of every stream
	MsgHello      MsgType = 2 // handshake, both directions
	MsgReject     MsgType = 3 // handshake refused
	MsgError      MsgType = 4 // the sender is tearing the session down
)

// Message is a control message. Validate checks what JSON decoding cannot:
// ranges, names, required fields.
type Message interface {
	Type() MsgType
	Validate() error
}

// newMessage returns an empty message of type t, or nil if t is unknown.
func newMessage(t MsgType) Message {
	switch t {
	case MsgStreamOpen:
		return new(StreamOpen)
	case MsgHello:
		return new(Hello)
	case MsgReject:
		return new(Reject)
	case MsgError:
		return new(ErrorMsg)
	case MsgPreflight:
		return new(Preflight)
	case MsgPreflightOK:
		return new(PreflightOK)
	case MsgRestore:
		return new(Restore)
	case MsgRestored:
		return new(Restored)
	case MsgCommit:
		return new(Commit)
	case MsgDone:
		return new(Done)
	case MsgPreRound:
		return new(PreRound)
	case MsgResolve:
		return new(Resolve)
	case MsgOutcome:
		return new(Outcome)
	}
	return nil
}

func (t MsgType) String() string {
	names := map[MsgType]string{
		MsgStreamOpen: "stream-open", MsgHello: "hello", MsgReject: "reject", MsgError: "error",
		MsgPreflight: "preflight", MsgPreflightOK: "preflight-ok", MsgRestore: "restore",
		MsgRestored: "restored", MsgCommit: "commit", MsgDone: "done", MsgPreRound: "pre-round",
		MsgResolve: "resolve", MsgOutcome: "outcome",
	}
	if n, ok := names[t]; ok {
		return n
	}
	return fmt.Sprintf("message-%d", uint16(t))
}

// encodeMessage renders m's payload.
func encodeMessage(m Message) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("encode %s: %w", m.Type(), err)
	}
	return json.Marshal(m)
}

// decodeMessage strictly decodes a payload of type t: unknown types, unknown
// fields, trailing data and invalid values are all errors.
func decodeMessage(t MsgType, payload []byte) (Message, error) {
	m := newMessage(t)
	if m == nil {
		return nil, fmt.Errorf("%w: %d", ErrUnknownMessage, uint16(t))
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadMessage, t, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: %s: trailing data", ErrBadMessage, t)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadMessage, t, err)
	}
	return m, nil
}

// namePattern bounds every name a peer sends (stream names, roles): no path
// separators, no control characters, short.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func validName(what, s string) error {
	if !namePattern.MatchString(s) {
		return fmt.Errorf("invalid %s %q", what, s)
	}
	return nil
}

// Stream kinds, sent in StreamOpen.
const (
	KindControl = "control"
	KindDir     = "dir"
	KindTunnel  = "tunnel"
)

// StreamOpen is the first frame on every stream: what the stream carries.
type StreamOpen struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

func (*StreamOpen) Type() MsgType { return MsgStreamOpen }

func (m *StreamOpen) Validate() error {
	switch m.Kind {
	case KindControl, KindDir, KindTunnel:
	default:
		return fmt.Errorf("unknown stream kind %q", m.Kind)
	}
	return validName("stream name", m.Name)
}

// Reject ends a handshake with the reason the peer was refused.
type Reject struct {
	Reason string `json:"reason"`
}

func (*Reject) Type() MsgType { return MsgReject }

func (m *Reject) Validate() error { return validText("reason", m.Reason) }

// ErrorMsg tells the peer why the sender is closing the session.
type ErrorMsg struct {
	Message string `json:"message"`
}

func (*ErrorMsg) Type() MsgType { return MsgError }

func (m *ErrorMsg) Validate() error { return validText("message", m.Message) }

// maxText bounds free text from a peer (reasons, error messages).
const maxText = 16 << 10

func validText(what, s string) error {
	if s == "" || len(s) > maxText {
		return fmt.Errorf("%s must be 1 to %d bytes", what, maxText)
	}
	return nil
}
