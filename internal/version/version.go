// Package version holds dockmove's release: the agents announce it in the
// handshake, every binary's --version prints it, and make deb reads it
// from this file.
package version

// Version is dockmove's release.
const Version = "0.1.0"
