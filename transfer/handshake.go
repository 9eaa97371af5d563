package transfer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strings"
)

// ProtocolVersion is the version of the wire format in transfer/spec.md
// and of the messages in protocol/spec.md (3: done carries post-copy
// figures). Peers must speak the same one: messages are decoded strictly.
const ProtocolVersion = 3

// Roles a peer can announce in its Hello.
const (
	RoleSource      = "source"
	RoleDestination = "destination"
)

// CRIUInfo is what a peer's CRIU and kernel allow.
type CRIUInfo struct {
	Version   int  `json:"version"`    // major*10000 + minor*100 + sublevel; 0: none
	MemTrack  bool `json:"mem_track"`  // soft-dirty tracking (pre-dumps)
	LazyPages bool `json:"lazy_pages"` // userfaultfd (lazy restore)
	// PageServer: a destination that takes a dump's pages as they are
	// dumped (protocol.Preflight.RemotePages).
	PageServer bool `json:"page_server,omitempty"`
}

// HostInfo is what a peer runs: the versions that decide whether a
// migration between two hosts can work, shown to people and in reports.
type HostInfo struct {
	Docker     string `json:"docker,omitempty"`     // dockerd's version
	Containerd string `json:"containerd,omitempty"` // as dockerd reports it
	Runc       string `json:"runc,omitempty"`       // as dockerd reports it
	Kernel     string `json:"kernel,omitempty"`
	Cgroup     int    `json:"cgroup,omitempty"` // 1 or 2; 0 unknown
}

var versionPattern = regexp.MustCompile(`^[A-Za-z0-9._+~:-]{0,64}$`)

// CleanVersion makes a version string fit HostInfo: characters outside
// letters, digits and ._+~:- become '_', and it is cut to 64 bytes.
func CleanVersion(v string) string {
	b := []byte(v)
	if len(b) > 64 {
		b = b[:64]
	}
	for i, c := range b {
		if !versionPattern.Match([]byte{c}) {
			b[i] = '_'
		}
	}
	return string(b)
}

func (h HostInfo) validate() error {
	for what, v := range map[string]string{"docker": h.Docker, "containerd": h.Containerd, "runc": h.Runc, "kernel": h.Kernel} {
		if !versionPattern.MatchString(v) {
			return fmt.Errorf("%s version %q", what, v)
		}
	}
	if h.Cgroup < 0 || h.Cgroup > 2 {
		return fmt.Errorf("cgroup version %d", h.Cgroup)
	}
	return nil
}

// String names the host's stack in one line, for people.
func (h HostInfo) String() string {
	var parts []string
	if h.Docker != "" {
		parts = append(parts, "Docker "+h.Docker)
	}
	if h.Containerd != "" {
		parts = append(parts, "containerd "+h.Containerd)
	}
	if h.Runc != "" {
		parts = append(parts, "runc "+h.Runc)
	}
	if h.Kernel != "" {
		parts = append(parts, "kernel "+h.Kernel)
	}
	if h.Cgroup != 0 {
		parts = append(parts, fmt.Sprintf("cgroup v%d", h.Cgroup))
	}
	return strings.Join(parts, ", ")
}

// Hello is the handshake message each side sends first on the control stream.
type Hello struct {
	Protocol         int      `json:"protocol"`
	Role             string   `json:"role"`
	Agent            string   `json:"agent"`      // agent version string
	CRIU             CRIUInfo `json:"criu"`       // the peer's CRIU
	DockerAPI        string   `json:"docker_api"` // negotiated Docker API version; "" without Docker
	RuntimeInstalled bool     `json:"runtime_installed"`
	Host             HostInfo `json:"host"`
	// InDoubt (a destination's, to a source) are the migrations from this
	// source whose copies the destination holds paused, in doubt: the
	// source tells it their outcomes (Config.InDoubtFor).
	InDoubt []string `json:"in_doubt,omitempty"`
}

// MaxInDoubt bounds Hello.InDoubt.
const MaxInDoubt = 64

func (*Hello) Type() MsgType { return MsgHello }

var apiVersionPattern = regexp.MustCompile(`^[0-9]{1,3}\.[0-9]{1,3}$`)

func (m *Hello) Validate() error {
	switch {
	case m.Protocol < 1:
		return fmt.Errorf("protocol version %d", m.Protocol)
	case m.Role != RoleSource && m.Role != RoleDestination:
		return fmt.Errorf("unknown role %q", m.Role)
	case m.CRIU.Version < 0 || m.CRIU.Version > 999999:
		return fmt.Errorf("criu version %d", m.CRIU.Version)
	case m.DockerAPI != "" && !apiVersionPattern.MatchString(m.DockerAPI):
		return fmt.Errorf("docker api version %q", m.DockerAPI)
	}
	if err := m.Host.validate(); err != nil {
		return err
	}
	if len(m.InDoubt) > MaxInDoubt {
		return fmt.Errorf("%d migrations in doubt (at most %d)", len(m.InDoubt), MaxInDoubt)
	}
	for _, id := range m.InDoubt {
		if err := validName("migration in doubt", id); err != nil {
			return err
		}
	}
	return validName("agent version", m.Agent)
}

// CheckCompatible reports every reason local and peer cannot work together,
// naming what differs, or nil.
func CheckCompatible(local, peer Hello) error {
	var diffs []string
	if local.Protocol != peer.Protocol {
		diffs = append(diffs, fmt.Sprintf("protocol version: ours %d, peer's %d", local.Protocol, peer.Protocol))
	}
	if local.Role == peer.Role {
		diffs = append(diffs, fmt.Sprintf("both peers are %ss", local.Role))
	}
	if peer.CRIU.Version == 0 {
		diffs = append(diffs, fmt.Sprintf("the %s has no usable CRIU", peer.Role))
	}
	if len(diffs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrIncompatible, strings.Join(diffs, "; "))
}

// handshake secures raw, builds the session on it and exchanges Hellos.
func handshake(ctx context.Context, raw net.Conn, cfg Config, client bool, log *slog.Logger) (*Session, error) {
	conn, err := secure(ctx, raw, cfg, client)
	if err != nil {
		return nil, err
	}
	s, err := newSession(conn, cfg, client, log)
	if err != nil {
		return nil, err
	}
	if client {
		err = s.helloAsClient(ctx)
	} else {
		err = s.helloAsServer(ctx)
	}
	if err != nil {
		s.mux.Close()
		return nil, s.explain(err)
	}
	return s, nil
}

// secure wraps raw in TLS and completes the handshake; the server has then
// verified the client's certificate before reading anything else from it.
func secure(ctx context.Context, raw net.Conn, cfg Config, client bool) (*recordingConn, error) {
	if cfg.InsecurePlaintext {
		return &recordingConn{Conn: raw}, nil
	}
	var tc *tls.Conn
	if client {
		tc = tls.Client(raw, cfg.TLS)
	} else {
		tc = tls.Server(raw, cfg.TLS)
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.IncompatibleUsage {
			peer := "destination"
			if !client {
				peer = "source"
			}
			name := "HOST"
			if inv.Cert != nil {
				name = inv.Cert.Subject.CommonName
			}
			return nil, fmt.Errorf("%w: %v: the %s's certificate was issued for the other role, not for a %s (migrate-dst certs --role %s=%s or both)",
				ErrAuth, err, peer, peer, name, peer)
		}
		return nil, fmt.Errorf("%w: %v", ErrAuth, err)
	}
	return &recordingConn{Conn: tc}, nil
}

func (s *Session) helloAsClient(ctx context.Context) error {
	// A server we may not talk to learns nothing, not even our Hello.
	if err := s.checkAllowed(); err != nil {
		return err
	}
	ctrl, err := s.mux.OpenStream()
	if err != nil {
		return fmt.Errorf("transfer: open control stream: %w", err)
	}
	s.ctrl = ctrl
	if err := s.writeMsg(ctrl, &StreamOpen{Kind: KindControl, Name: KindControl}); err != nil {
		return err
	}
	werr := s.writeMsg(ctrl, &s.cfg.Hello)
	// Read even if the write failed: a server that refused our hello may
	// have answered and closed before the write call returned, and its
	// reason is the better error.
	m, err := s.readMsg(ctrl)
	if werr != nil {
		if r, ok := m.(*Reject); ok && err == nil {
			return fmt.Errorf("%w: %s", ErrRejected, r.Reason)
		}
		return werr
	}
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	switch m := m.(type) {
	case *Reject:
		return fmt.Errorf("%w: %s", ErrRejected, m.Reason)
	case *Hello:
		s.peer = *m
		return CheckCompatible(s.cfg.Hello, *m)
	}
	return fmt.Errorf("%w: %s during handshake", ErrUnexpectedMessage, m.Type())
}

func (s *Session) helloAsServer(ctx context.Context) error {
	ctrl, err := s.mux.AcceptStreamWithContext(ctx)
	if err != nil {
		return fmt.Errorf("transfer: accept control stream: %w", err)
	}
	s.ctrl = ctrl
	open, err := s.readMsg(ctrl)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	if o, ok := open.(*StreamOpen); !ok || o.Kind != KindControl {
		return fmt.Errorf("%w: first stream is not the control stream", ErrUnexpectedMessage)
	}
	m, err := s.readMsg(ctrl)
	if err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	hello, ok := m.(*Hello)
	if !ok {
		return fmt.Errorf("%w: %s instead of hello", ErrUnexpectedMessage, m.Type())
	}
	s.peer = *hello
	if err := s.checkAllowed(); err != nil {
		s.writeMsg(ctrl, &Reject{Reason: err.Error()})
		return err
	}
	if err := CheckCompatible(s.cfg.Hello, *hello); err != nil {
		s.writeMsg(ctrl, &Reject{Reason: err.Error()})
		return err
	}
	mine := s.cfg.Hello
	if s.cfg.InDoubtFor != nil && hello.Role == RoleSource {
		mine.InDoubt = s.cfg.InDoubtFor(s.PeerName())
		if len(mine.InDoubt) > MaxInDoubt {
			mine.InDoubt = mine.InDoubt[:MaxInDoubt] // the rest at the next contact
		}
	}
	return s.writeMsg(ctrl, &mine)
}

// PeerName is the name the peer's certificate proves: its common name, or
// without one its first other name (as the allow-lists read them); ""
// without TLS.
func (s *Session) PeerName() string {
	tc, ok := s.conn.Conn.(*tls.Conn)
	if !ok || len(tc.ConnectionState().PeerCertificates) == 0 {
		return ""
	}
	for _, n := range certNames(tc.ConnectionState().PeerCertificates[0]) {
		if n != "" {
			return n
		}
	}
	return ""
}
