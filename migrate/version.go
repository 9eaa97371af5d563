//go:build linux

package migrate

// Version is the agents' version, announced in the handshake.
const Version = "0.1.0"
