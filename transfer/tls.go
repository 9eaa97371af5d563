package transfer

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// TLSFiles names one host's credentials, as written by WriteBundle.
type TLSFiles struct {
	CA   string // PEM certificate of the CA every peer must be signed by
	Cert string // this host's PEM certificate
	Key  string // this host's PEM private key
	// Revoked lists revoked certificates' serial numbers (hex, one per
	// line, as `certs --revoke` writes it); a peer presenting one is
	// refused. Optional: a missing file revokes nothing.
	Revoked string
}

// RevokedFile is the name of the revocation list in a TLS directory.
const RevokedFile = "revoked.txt"

// HostTLSFiles returns the file names WriteBundle uses inside a host's
// directory.
func HostTLSFiles(dir string) TLSFiles {
	return TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem"),
		Revoked: filepath.Join(dir, RevokedFile)}
}

// ExpiresSoon reports when this host's certificate ends, if that is within
// RenewWithin: agents warn so it is renewed before peers refuse it.
func (f TLSFiles) ExpiresSoon() (time.Time, bool) {
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil || cert.Leaf == nil {
		return time.Time{}, false
	}
	return cert.Leaf.NotAfter, time.Until(cert.Leaf.NotAfter) < RenewWithin
}

func (f TLSFiles) load() (tls.Certificate, *x509.CertPool, error) {
	if st, err := os.Stat(f.Key); err == nil && st.Mode().Perm()&0o077 != 0 {
		return tls.Certificate{}, nil, fmt.Errorf("transfer: %s is readable by others (mode %04o); make it private: chmod 600 %s", f.Key, st.Mode().Perm(), f.Key)
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("transfer: load certificate: %w", err)
	}
	if time.Now().After(cert.Leaf.NotAfter) {
		return tls.Certificate{}, nil, fmt.Errorf("transfer: %s expired on %s; renew it: migrate-dst certs --out CA-DIR --renew --host NAME=ADDR", f.Cert, cert.Leaf.NotAfter.Format(time.DateOnly))
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("transfer: load CA: %w", err)
	}
	if n := countCerts(caPEM); n != 1 {
		// One CA, the fleet's: a second one would let its holders in too.
		return tls.Certificate{}, nil, fmt.Errorf("transfer: %s holds %d certificates; it must hold exactly the fleet's CA", f.CA, n)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return tls.Certificate{}, nil, fmt.Errorf("transfer: %s holds no PEM certificate", f.CA)
	}
	return cert, pool, nil
}

// countCerts counts the PEM certificate blocks in data.
func countCerts(data []byte) int {
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return n
		}
		if b.Type == "CERTIFICATE" {
			n++
		}
	}
}

// Server returns a TLS 1.3 configuration that presents this host's
// certificate and requires a client certificate signed by the CA.
func (f TLSFiles) Server() (*tls.Config, error) {
	cfg, pool, err := f.base()
	if err != nil {
		return nil, err
	}
	cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	return cfg, nil
}

// Client returns a TLS 1.3 configuration that presents this host's
// certificate and accepts only servers signed by the CA. Dial fills in the
// server name from the address it dials.
func (f TLSFiles) Client() (*tls.Config, error) {
	cfg, pool, err := f.base()
	if err != nil {
		return nil, err
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// base is what both sides share: TLS 1.3, this host's certificate, and
// the refusal of revoked peers.
func (f TLSFiles) base() (*tls.Config, *x509.CertPool, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, nil, err
	}
	revoked := &revocationList{path: f.Revoked}
	if _, err := revoked.current(); err != nil {
		return nil, nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return nil // the chain check refuses it where a certificate is required
		}
		list, err := revoked.current()
		if err != nil {
			return err // a list that no longer reads lets nobody in
		}
		c := cs.PeerCertificates[0]
		if list[serialHex(c)] {
			return fmt.Errorf("the certificate of %s (serial %s) is revoked (%s)", c.Subject.CommonName, serialHex(c), f.Revoked)
		}
		return nil
	}
	return cfg, pool, nil
}

// revocationList is a revocation list file, read again whenever it
// changes: a list copied to a running agent takes effect at its next
// handshake, without a restart.
type revocationList struct {
	path string

	mu      sync.Mutex
	stamp   string // the file's size and modification time when read; "" none
	serials map[string]bool
}

// current returns the list as the file now holds it.
func (l *revocationList) current() (map[string]bool, error) {
	if l.path == "" {
		return nil, nil
	}
	stamp := "missing"
	if st, err := os.Stat(l.path); err == nil {
		stamp = fmt.Sprintf("%d %d", st.Size(), st.ModTime().UnixNano())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if stamp == l.stamp {
		return l.serials, nil
	}
	serials, err := readRevoked(l.path)
	if err != nil {
		return nil, err
	}
	l.stamp, l.serials = stamp, serials
	return serials, nil
}

// readRevoked reads a revocation list; a missing file revokes nothing.
func readRevoked(path string) (map[string]bool, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("transfer: revocation list: %w", err)
	}
	out := map[string]bool{}
	for i, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		if line = strings.ToLower(strings.TrimSpace(line)); line == "" {
			continue
		}
		if strings.Trim(line, "0123456789abcdef") != "" {
			return nil, fmt.Errorf("transfer: %s:%d: %q is not a serial number in hex", path, i+1, line)
		}
		out[line] = true
	}
	return out, nil
}

// serialHex is a certificate's serial number as revocation lists hold it.
func serialHex(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

// certNames are the names a certificate proves: its common name, DNS names
// and IP addresses.
func certNames(c *x509.Certificate) []string {
	names := []string{c.Subject.CommonName}
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

// checkAllowed refuses a peer whose certificate names none of
// Config.AllowPeers.
func (s *Session) checkAllowed() error {
	if len(s.cfg.AllowPeers) == 0 {
		return nil
	}
	tc, ok := s.conn.Conn.(*tls.Conn)
	if !ok || len(tc.ConnectionState().PeerCertificates) == 0 {
		return fmt.Errorf("%w: no peer certificate to check against the allow-list", ErrAuth)
	}
	names := certNames(tc.ConnectionState().PeerCertificates[0])
	for _, n := range names {
		if n != "" && slices.Contains(s.cfg.AllowPeers, n) {
			return nil
		}
	}
	return fmt.Errorf("%w: host %q is not allowed here (allowed: %s)", ErrAuth, names[0], strings.Join(s.cfg.AllowPeers, ", "))
}
