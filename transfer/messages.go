package transfer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sync"
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

// The registry names the message types of the protocol a session carries
// besides its own four (the migration's live in package protocol), as
// encoding/gob registers types: the wire knows frames, not schemas.
type registered struct {
	name    string
	newFunc func() Message
}

var (
	registryMu sync.RWMutex
	registry   = map[MsgType]registered{
		MsgStreamOpen: {"stream-open", func() Message { return new(StreamOpen) }},
		MsgHello:      {"hello", func() Message { return new(Hello) }},
		MsgReject:     {"reject", func() Message { return new(Reject) }},
		MsgError:      {"error", func() Message { return new(ErrorMsg) }},
	}
)

// FirstProtocolType is the lowest number a protocol built on sessions may
// give its messages; those below belong to the session.
const FirstProtocolType MsgType = 10

// Register makes messages of type t decodable on every session: newFunc
// returns an empty one, name is what logs and errors call it. A number
// below FirstProtocolType or registered twice is a programming error and
// panics, as with encoding/gob.Register.
func Register(t MsgType, name string, newFunc func() Message) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if t < FirstProtocolType {
		panic(fmt.Sprintf("transfer: message type %d (%s) is reserved for the session", t, name))
	}
	if r, ok := registry[t]; ok {
		panic(fmt.Sprintf("transfer: message type %d registered twice (%s, %s)", t, r.name, name))
	}
	registry[t] = registered{name, newFunc}
}

// newMessage returns an empty message of type t, or nil if t is unknown.
func newMessage(t MsgType) Message {
	registryMu.RLock()
	r, ok := registry[t]
	registryMu.RUnlock()
	if !ok {
		return nil
	}
	return r.newFunc()
}

func (t MsgType) String() string {
	registryMu.RLock()
	r, ok := registry[t]
	registryMu.RUnlock()
	if ok {
		return r.name
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
