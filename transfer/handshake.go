package transfer

import (
	"fmt"
	"regexp"
	"strings"
)

// ProtocolVersion is the version of the wire format in transfer/spec.md.
// Peers must speak the same one.
const ProtocolVersion = 1

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
}

// Hello is the handshake message each side sends first on the control stream.
type Hello struct {
	Protocol         int      `json:"protocol"`
	Role             string   `json:"role"`
	Agent            string   `json:"agent"`      // agent version string
	CRIU             CRIUInfo `json:"criu"`       // the peer's CRIU
	DockerAPI        string   `json:"docker_api"` // negotiated Docker API version; "" without Docker
	RuntimeInstalled bool     `json:"runtime_installed"`
}

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
