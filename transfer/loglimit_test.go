package transfer

import (
	"fmt"
	"testing"
	"time"
)

// TestRefusedLogIsLimitedPerAddressWithFakeClock: one line per address per
// period, the next one counting those held back; other addresses are not
// held back by a flood from one; the memory of addresses is bounded.
func TestRefusedLogIsLimitedPerAddressWithFakeClock(t *testing.T) {
	l := &logLimiter{every: 10 * time.Second}
	t0 := time.Unix(1000, 0)
	if ok, n := l.allow("10.0.0.9", t0); !ok || n != 0 {
		t.Fatalf("first line: %v %d", ok, n)
	}
	for i := range 500 {
		if ok, _ := l.allow("10.0.0.9", t0.Add(time.Duration(i)*time.Millisecond)); ok {
			t.Fatalf("line %d of a flood logged", i)
		}
	}
	if ok, _ := l.allow("10.0.0.7", t0.Add(time.Second)); !ok {
		t.Fatal("another address was held back by the flood")
	}
	if ok, n := l.allow("10.0.0.9", t0.Add(10*time.Second)); !ok || n != 500 {
		t.Fatalf("after the period: %v, %d held back (want 500)", ok, n)
	}
	for i := range 3 * maxLimiterKeys {
		l.allow(fmt.Sprintf("10.1.%d.%d", i/256, i%256), t0.Add(time.Duration(20+i)*time.Second))
	}
	if len(l.last) > maxLimiterKeys+1 {
		t.Fatalf("%d addresses remembered", len(l.last))
	}
}

// TestRefusalKindIgnoresNumbers: refusals that differ only in their
// numbers (random bytes give a different record length each time) are one
// kind, so a flood of them is limited; different causes stay apart.
func TestRefusalKindIgnoresNumbers(t *testing.T) {
	a := refusalKind("tls: oversized record received with length 12345")
	b := refusalKind("tls: oversized record received with length 777")
	if a != b {
		t.Fatalf("%q and %q differ", a, b)
	}
	if refusalKind("tls: first record does not look like a TLS handshake") == a {
		t.Fatal("two causes taken for one")
	}
}
