// Package lazypages is post-copy migration's page path. The source's CRIU
// dump serves the memory it left out of the images from a page server; the
// destination's CRIU lazy-pages daemon fetches pages from it on demand
// (userfaultfd) and pushes the rest in the background. Both ends talk
// through a tunnel on the agents' one connection, so no second port is
// opened between the hosts:
//
//	restored process --uffd--> criu lazy-pages --TCP--> [tunnel "pages"]
//	   --> source agent --TCP--> criu dump's page server
package lazypages

import (
	"errors"
	"strconv"
	"strings"

	"github.com/dockmove/dockmove/protocol"
)

// Stream is the name of the tunnel that carries the page traffic.
const Stream = "pages"

// SocketName is the socket the lazy-pages daemon creates in its work
// directory; `runc restore --lazy-pages` with the same work directory
// connects to it.
const SocketName = "lazy-pages.socket"

// ErrIncomplete reports that the daemon stopped before every page arrived:
// the restored container cannot continue.
var ErrIncomplete = errors.New("lazypages: memory transfer did not complete")

// summaryPrefix starts the line the lazy-pages daemon prints on its
// standard output when it ends well (CRIU as scripts/deps.sh builds it:
// patch lazy-pages-summary), for example
//
//	lazy-pages: faults 812 queued 40 zero 3 fault-pages 769 background-pages 64768
const summaryPrefix = "lazy-pages: "

// ParseSummary reads what the daemon did from its standard output. It
// reports false when the daemon did not say (a CRIU without the patch, or
// a daemon that failed) or said something else.
func ParseSummary(out []byte) (protocol.PostCopyStats, bool) {
	var s protocol.PostCopyStats
	fields := map[string]*int64{"faults": &s.Faults, "queued": &s.Queued, "zero": &s.Zero, "fault-pages": &s.FaultPages, "background-pages": &s.BackgroundPages}
	for line := range strings.Lines(string(out)) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), summaryPrefix)
		if !ok {
			continue
		}
		words := strings.Fields(rest)
		if len(words) != 2*len(fields) {
			return s, false
		}
		seen := map[string]bool{}
		for i := 0; i < len(words); i += 2 {
			p, known := fields[words[i]]
			n, err := strconv.ParseInt(words[i+1], 10, 64)
			if !known || seen[words[i]] || err != nil {
				return s, false
			}
			*p, seen[words[i]] = n, true
		}
		return s, s.Validate() == nil
	}
	return s, false
}
