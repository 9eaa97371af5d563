//go:build linux

package migrate

import "github.com/dockmove/dockmove/internal/cli"

// Version is the agents' version, announced in the handshake.
const Version = cli.Release
