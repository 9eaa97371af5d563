// Package migrate moves a running Docker container, or a plain process
// tree, from one host to another while it keeps its memory, processes,
// address and TCP connections.
//
// The source side (Migrate, files source*.go) inspects what it moves,
// refuses early what cannot move, checkpoints it with CRIU (after pre-copy
// rounds, or leaving memory to follow by post-copy), ships everything over
// one transfer session and decides commit or rollback; its guard keeps
// that promise if migrate-src itself dies. The destination side (Server,
// files destination*.go) checks every message against its own policy,
// receives the streams, recreates the container under Docker's management
// through the restore runtime, and undoes all of it unless the source
// commits. Either way a failed migration leaves the workload running on
// exactly one host.
package migrate
