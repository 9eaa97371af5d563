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

import "errors"

// Stream is the name of the tunnel that carries the page traffic.
const Stream = "pages"

// SocketName is the socket the lazy-pages daemon creates in its work
// directory; `runc restore --lazy-pages` with the same work directory
// connects to it.
const SocketName = "lazy-pages.socket"

// ErrIncomplete reports that the daemon stopped before every page arrived:
// the restored container cannot continue.
var ErrIncomplete = errors.New("lazypages: memory transfer did not complete")
