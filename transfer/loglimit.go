package transfer

import (
	"regexp"
	"sync"
	"time"
)

// logLimiter lets a line through once per key (a peer's address and the
// cause) per period and counts the ones it held back, so that a flood of bad
// handshakes from one address cannot flood the log while each address
// still shows.
type logLimiter struct {
	every time.Duration

	mu      sync.Mutex
	last    map[string]time.Time
	dropped map[string]int
}

// maxLimiterKeys bounds the addresses remembered; older ones are forgotten.
const maxLimiterKeys = 1024

// allow reports whether a line for key may be logged at now, and how many
// were held back for key since the last one.
func (l *logLimiter) allow(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.dropped = map[string]time.Time{}, map[string]int{}
	}
	if t, ok := l.last[key]; ok && now.Sub(t) < l.every {
		l.dropped[key]++
		return false, 0
	}
	if len(l.last) >= maxLimiterKeys {
		for k, t := range l.last {
			if now.Sub(t) >= l.every {
				delete(l.last, k)
				delete(l.dropped, k)
			}
		}
		if len(l.last) >= maxLimiterKeys { // all recent: start over
			l.last, l.dropped = map[string]time.Time{}, map[string]int{}
		}
	}
	n := l.dropped[key]
	l.last[key] = now
	delete(l.dropped, key)
	return true, n
}

// refusalKind is a refusal's cause without its numbers: random bytes
// where a TLS hello is due fail with a different record length each time
// ("tls: oversized record received with length 12345"), and each must not
// count as a new kind of refusal.
func refusalKind(cause string) string {
	return numbers.ReplaceAllLiteralString(cause, "#")
}

var numbers = regexp.MustCompile(`[0-9]+`)

// refusedLog limits the "peer refused" lines of this process's sessions.
var refusedLog = &logLimiter{every: 10 * time.Second}
