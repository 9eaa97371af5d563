package transfer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// caValidity and hostValidity are how long generated certificates last. The
// CA is private to the user's hosts; a host's certificate is renewed from it
// (IssueHosts with renew) well before it ends, and agents warn from
// RenewWithin on.
const (
	caValidity   = 5 * 365 * 24 * time.Hour
	hostValidity = 365 * 24 * time.Hour
	RenewWithin  = 30 * 24 * time.Hour
)

// CA is a private certificate authority for a group of hosts.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

// NewCA creates a CA named name.
func NewCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key, pem: pemBlock("CERTIFICATE", der)}, nil
}

// Issue returns a certificate and key for h, for every name and IP in its
// SANs, usable in the roles it has: a TLS client (a source dials) and/or a
// TLS server (a destination listens). The peer's TLS stack checks the
// role: a destination-only certificate cannot dial in as a source.
func (ca *CA) Issue(h BundleHost) (certPEM, keyPEM []byte, err error) {
	host, sans := h.Name, h.SANs
	var usage []x509.ExtKeyUsage
	switch h.Role {
	case "", RoleBoth:
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	case RoleSource:
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case RoleDestination:
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	default:
		return nil, nil, fmt.Errorf("transfer: host %s: unknown role %q (source, destination or both)", host, h.Role)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(hostValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
	}
	for _, san := range append([]string{host}, sans...) {
		if ip := net.ParseIP(san); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, san)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), pemBlock("EC PRIVATE KEY", keyDER), nil
}

// BundleHost is one host to issue credentials for.
type BundleHost struct {
	Name string   // host name; also the directory name and a DNS SAN
	SANs []string // further DNS names and IP addresses it is reached by
	// Role is what the host may be: RoleSource, RoleDestination, or
	// RoleBoth ("" too): a host drained today may receive tomorrow.
	Role string
}

// checkHosts refuses, before anything is written, a bundle without hosts
// or with a bad name or role.
func checkHosts(hosts []BundleHost) error {
	if len(hosts) == 0 {
		return errors.New("transfer: no hosts to issue certificates for")
	}
	for _, h := range hosts {
		if err := validName("host name", h.Name); err != nil {
			return fmt.Errorf("transfer: %w", err)
		}
		if !slices.Contains([]string{"", RoleBoth, RoleSource, RoleDestination}, h.Role) {
			return fmt.Errorf("transfer: host %s: unknown role %q (source, destination or both)", h.Name, h.Role)
		}
	}
	return nil
}

// RoleBoth names a host that may be a source and a destination.
const RoleBoth = "both"

// WriteBundle creates a new CA in dir and, for each host, a directory
// dir/NAME holding what that host needs (ca.pem, cert.pem, key.pem). Copy
// dir/NAME to the host. dir/ca-key.pem stays with the operator. It refuses
// to overwrite an existing CA.
func WriteBundle(dir string, hosts []BundleHost) error {
	if err := checkHosts(hosts); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.pem")); err == nil {
		return fmt.Errorf("transfer: %s already holds a CA; choose another directory", dir)
	}
	ca, err := NewCA("dockmove CA")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(ca.key)
	if err != nil {
		return err
	}
	if err := writeFiles(dir, map[string][]byte{"ca.pem": ca.pem, "ca-key.pem": pemBlock("EC PRIVATE KEY", keyDER)}); err != nil {
		return err
	}
	for _, h := range hosts {
		cert, key, err := ca.Issue(h)
		if err != nil {
			return err
		}
		hdir := filepath.Join(dir, h.Name)
		if err := mkdirNoFollow(hdir); err != nil {
			return err
		}
		if err := writeFiles(hdir, map[string][]byte{"ca.pem": ca.pem, "cert.pem": cert, "key.pem": key}); err != nil {
			return err
		}
	}
	return nil
}

// LoadCA reads the CA WriteBundle left in dir (ca.pem, ca-key.pem).
func LoadCA(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("transfer: %w (the directory `certs` wrote, with ca-key.pem)", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		return nil, fmt.Errorf("transfer: %w (the CA's key stays with the operator, in the directory `certs` wrote)", err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("transfer: %s holds no PEM CA certificate and key", dir)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("transfer: CA certificate: %w", err)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("transfer: CA key: %w", err)
	}
	if !cert.IsCA || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("transfer: %s: ca-key.pem does not belong to ca.pem's CA", dir)
	}
	return &CA{cert: cert, key: key, pem: certPEM}, nil
}

// IssueHosts issues certificates from the CA in dir for hosts that have
// none yet, into dir/NAME. With renew, a host that has one gets a new
// certificate and key in dir/NAME.renewed-DATE instead (to copy over the
// host's files); the old ones stay valid until they end.
func IssueHosts(dir string, hosts []BundleHost, renew bool) (written []string, err error) {
	if err := checkHosts(hosts); err != nil {
		return nil, err
	}
	ca, err := LoadCA(dir)
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		hdir := filepath.Join(dir, h.Name)
		if _, err := os.Stat(hdir); err == nil {
			if !renew {
				return written, fmt.Errorf("transfer: %s already has credentials in %s (renew them with --renew)", h.Name, hdir)
			}
			hdir += ".renewed-" + time.Now().UTC().Format("20060102-150405")
		}
		cert, key, err := ca.Issue(h)
		if err != nil {
			return written, err
		}
		if err := os.Mkdir(hdir, 0o700); err != nil {
			return written, err
		}
		if err := writeFiles(hdir, map[string][]byte{"ca.pem": ca.pem, "cert.pem": cert, "key.pem": key}); err != nil {
			return written, err
		}
		written = append(written, hdir)
	}
	return written, nil
}

// writeFiles creates each file with mode 0600, never through a symlink and
// never over an existing file (which could keep a looser mode).
func writeFiles(dir string, files map[string][]byte) error {
	for name, data := range files {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if err != nil {
			return fmt.Errorf("transfer: %w (credentials are written only as new files)", err)
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// mkdirNoFollow makes directory dir (0700), or takes the one there, but
// never a symbolic link: credentials written through one would land
// wherever it points.
func mkdirNoFollow(dir string) error {
	err := os.Mkdir(dir, 0o700)
	if err == nil || !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("transfer: %s exists and is not a directory (a link?): credentials are written only into real directories", dir)
	}
	return nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n
}

// Revoke adds every certificate issued to host from the CA in dir (the
// current one and renewed ones) to dir's revocation list, and returns the
// list's path: copied into each host's TLS directory, it makes the agents
// refuse those certificates.
func Revoke(dir, host string) (string, []string, error) {
	if err := validName("host name", host); err != nil {
		return "", nil, fmt.Errorf("transfer: %w", err)
	}
	dirs, _ := filepath.Glob(filepath.Join(dir, host+".renewed-*"))
	dirs = append([]string{filepath.Join(dir, host)}, dirs...)
	var lines, serials []string
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "cert.pem"))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		b, _ := pem.Decode(data)
		if b == nil {
			return "", nil, fmt.Errorf("transfer: %s/cert.pem holds no certificate", d)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return "", nil, fmt.Errorf("transfer: %s/cert.pem: %w", d, err)
		}
		serials = append(serials, serialHex(c))
		lines = append(lines, fmt.Sprintf("%s # %s, revoked %s", serialHex(c), filepath.Base(d), time.Now().UTC().Format(time.DateOnly)))
	}
	if len(serials) == 0 {
		return "", nil, fmt.Errorf("transfer: %s holds no certificate of host %s", dir, host)
	}
	path := filepath.Join(dir, RevokedFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return "", nil, fmt.Errorf("transfer: %w", err)
	}
	_, err = f.WriteString(strings.Join(lines, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return path, serials, err
}
