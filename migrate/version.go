//go:build linux

package migrate

import "github.com/dockmove/dockmove/internal/version"

// Version is the agents' version, announced in the handshake.
const Version = version.Version
