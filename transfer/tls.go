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
	"time"
)

// TLSFiles names one host's credentials, as written by WriteBundle.
type TLSFiles struct {
	CA   string // PEM certificate of the CA every peer must be signed by
	Cert string // this host's PEM certificate
	Key  string // this host's PEM private key
}

// HostTLSFiles returns the file names WriteBundle uses inside a host's
// directory.
func HostTLSFiles(dir string) TLSFiles {
	return TLSFiles{CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem")}
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

// base is what both sides share: TLS 1.3 and this host's certificate.
func (f TLSFiles) base() (*tls.Config, *x509.CertPool, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}, pool, nil
}

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
