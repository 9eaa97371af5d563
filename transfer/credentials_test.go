package transfer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeTestBundle(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tls")
	if err := WriteBundle(dir, []BundleHost{{Name: "host1", SANs: []string{"127.0.0.1"}}}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCredentialsAreLoadedOnlyWhenPrivateAndSingleCA(t *testing.T) {
	dir := writeTestBundle(t)
	files := HostTLSFiles(filepath.Join(dir, "host1"))
	if _, err := files.Server(); err != nil {
		t.Fatalf("a fresh bundle: %v", err)
	}
	st, _ := os.Stat(files.Key)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key written with mode %04o", st.Mode().Perm())
	}

	os.Chmod(files.Key, 0o644)
	if _, err := files.Client(); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("a world-readable key was loaded: %v", err)
	}
	os.Chmod(files.Key, 0o600)

	// A second CA in ca.pem would let its holders in.
	other := writeTestBundle(t)
	extra, _ := os.ReadFile(filepath.Join(other, "ca.pem"))
	ca, _ := os.ReadFile(files.CA)
	os.WriteFile(files.CA, append(ca, extra...), 0o600)
	if _, err := files.Server(); err == nil || !strings.Contains(err.Error(), "2 certificates") {
		t.Fatalf("a CA file with two certificates was loaded: %v", err)
	}
}

func TestCredentialsAreNeverWrittenThroughALinkOrOverAFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("keep"), 0o644)
	if err := os.MkdirAll(filepath.Join(dir, "host1"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A planted link where host1's key will go.
	if err := os.Symlink(victim, filepath.Join(dir, "host1", "key.pem")); err != nil {
		t.Fatal(err)
	}
	if err := WriteBundle(dir, []BundleHost{{Name: "host1"}}); err == nil {
		t.Fatal("the bundle was written through a planted symlink")
	}
	if data, _ := os.ReadFile(victim); string(data) != "keep" {
		t.Fatalf("the link's target was overwritten: %q", data)
	}

	// A planted link where host1's directory will go.
	dir = filepath.Join(t.TempDir(), "tls")
	elsewhere := t.TempDir()
	os.MkdirAll(dir, 0o700)
	if err := os.Symlink(elsewhere, filepath.Join(dir, "host1")); err != nil {
		t.Fatal(err)
	}
	if err := WriteBundle(dir, []BundleHost{{Name: "host1"}}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("the bundle went through a planted directory link: %v", err)
	}
	if left, _ := os.ReadDir(elsewhere); len(left) != 0 {
		t.Fatalf("credentials written where the link points: %v", left)
	}
}

// A CA directory issues certificates (valid a year) for new hosts, refuses
// to overwrite a host's credentials, and renews them beside the old ones.
func TestIssueAndRenewFromAnExistingCA(t *testing.T) {
	dir := writeTestBundle(t)
	written, err := IssueHosts(dir, []BundleHost{{Name: "host3", SANs: []string{"10.0.0.3"}}}, false)
	if err != nil || len(written) != 1 {
		t.Fatalf("issue host3: %v %v", written, err)
	}
	h3 := HostTLSFiles(written[0])
	if _, err := h3.Server(); err != nil {
		t.Fatalf("host3's new credentials: %v", err)
	}
	if end, _ := h3.ExpiresSoon(); end.After(time.Now().Add(367*24*time.Hour)) || end.Before(time.Now().Add(364*24*time.Hour)) {
		t.Fatalf("host certificate valid until %v, want about a year", end)
	}
	if _, err := IssueHosts(dir, []BundleHost{{Name: "host1"}}, false); err == nil || !strings.Contains(err.Error(), "--renew") {
		t.Fatalf("re-issuing host1 without --renew: %v", err)
	}
	renewed, err := IssueHosts(dir, []BundleHost{{Name: "host1", SANs: []string{"127.0.0.1"}}}, true)
	if err != nil || len(renewed) != 1 || !strings.Contains(renewed[0], "host1.renewed-") {
		t.Fatalf("renew host1: %v %v", renewed, err)
	}
	oldCert, _ := os.ReadFile(HostTLSFiles(filepath.Join(dir, "host1")).Cert)
	newCert, _ := os.ReadFile(HostTLSFiles(renewed[0]).Cert)
	if string(oldCert) == string(newCert) {
		t.Fatal("renewal wrote the same certificate")
	}
	if _, err := HostTLSFiles(renewed[0]).Client(); err != nil {
		t.Fatalf("renewed credentials: %v", err)
	}
}

// An expired certificate is refused with what to do; one ending within
// RenewWithin is reported.
func TestExpiredAndExpiringCertificates(t *testing.T) {
	dir := writeTestBundle(t)
	ca, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		until time.Duration
	}{{"expired", -time.Hour}, {"expiring", 10 * 24 * time.Hour}} {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: c.name},
			NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(c.until),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalECPrivateKey(key)
		hdir := filepath.Join(dir, c.name)
		os.Mkdir(hdir, 0o700)
		if err := writeFiles(hdir, map[string][]byte{"ca.pem": ca.pem, "cert.pem": pemBlock("CERTIFICATE", der), "key.pem": pemBlock("EC PRIVATE KEY", keyDER)}); err != nil {
			t.Fatal(err)
		}
		files := HostTLSFiles(hdir)
		_, err = files.Server()
		_, soon := files.ExpiresSoon()
		switch c.name {
		case "expired":
			if err == nil || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), "--renew") {
				t.Fatalf("expired certificate: %v", err)
			}
		case "expiring":
			if err != nil || !soon {
				t.Fatalf("expiring certificate: %v, soon %v", err, soon)
			}
		}
	}
}

// TestBundleRefusesUnknownRoleBeforeWriting: a typo in a role writes no CA.
func TestBundleRefusesUnknownRoleBeforeWriting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	err := WriteBundle(dir, []BundleHost{{Name: "host1"}, {Name: "host2", Role: "sauce"}})
	if err == nil || !strings.Contains(err.Error(), `unknown role "sauce"`) {
		t.Fatalf("got %v", err)
	}
	if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
		t.Fatalf("a refused bundle left %s behind (%v)", dir, serr)
	}
}
