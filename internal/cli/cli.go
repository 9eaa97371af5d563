// Package cli holds what both agents' command lines share: TLS and
// transfer flags, and human-readable sizes.
package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/pflag"

	"github.com/dockmove/dockmove/transfer"
)

// TransferFlags are the session flags of both agents.
type TransferFlags struct {
	TLSDir    string
	CA        string
	Cert      string
	Key       string
	Plaintext bool
	ZstdLevel int
	// StreamIdle and PeerWait are transfer.Config's StreamIdleTimeout and
	// PeerWaitTimeout.
	StreamIdle time.Duration
	PeerWait   time.Duration
	// KeepAlive and DeadPeer are transfer.Config's KeepAlive and
	// DeadPeerTimeout.
	KeepAlive time.Duration
	DeadPeer  time.Duration
}

// Register adds the flags to fs.
func (f *TransferFlags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&f.TLSDir, "tls-dir", "/etc/dockmove/tls", "directory holding ca.pem, cert.pem and key.pem (as migrate-dst certs writes them)")
	fs.StringVar(&f.CA, "tls-ca", "", "CA certificate (overrides --tls-dir)")
	fs.StringVar(&f.Cert, "tls-cert", "", "this host's certificate (overrides --tls-dir)")
	fs.StringVar(&f.Key, "tls-key", "", "this host's key (overrides --tls-dir)")
	fs.BoolVar(&f.Plaintext, "insecure-plaintext-no-auth", false, "DEBUGGING ONLY: no TLS, no authentication; anyone who can connect can restore processes as root")
	fs.IntVar(&f.ZstdLevel, "zstd-level", 1, "zstd level for images and files (1 fastest .. 22 smallest; 0 off)")
	d := transfer.DefaultConfig()
	fs.DurationVar(&f.StreamIdle, "stream-idle-timeout", d.StreamIdleTimeout, "fail a file stream that makes no progress for this long")
	fs.DurationVar(&f.PeerWait, "peer-wait-timeout", d.PeerWaitTimeout, "give up on a peer that sends nothing it is due to send (the next step, a stream) for this long")
	fs.DurationVar(&f.KeepAlive, "keepalive", d.KeepAlive, "how often to ping the peer over an idle connection")
	fs.DurationVar(&f.DeadPeer, "dead-peer-timeout", d.DeadPeerTimeout, "declare the peer gone when a ping stays unanswered, or a write blocked, this long (with --keepalive it bounds how long a cut link goes unnoticed)")
}

// Args renders the flags as arguments, for a helper that must reach the
// same peers (migrate-src's guard).
func (f *TransferFlags) Args() []string {
	args := []string{"--tls-dir", f.TLSDir, "--zstd-level", strconv.Itoa(f.ZstdLevel),
		"--stream-idle-timeout", f.StreamIdle.String(), "--peer-wait-timeout", f.PeerWait.String(),
		"--keepalive", f.KeepAlive.String(), "--dead-peer-timeout", f.DeadPeer.String()}
	for flag, v := range map[string]string{"--tls-ca": f.CA, "--tls-cert": f.Cert, "--tls-key": f.Key} {
		if v != "" {
			args = append(args, flag, v)
		}
	}
	if f.Plaintext {
		args = append(args, "--insecure-plaintext-no-auth")
	}
	return args
}

// Files resolves the TLS file names.
func (f *TransferFlags) Files() transfer.TLSFiles {
	files := transfer.HostTLSFiles(f.TLSDir)
	for _, o := range []struct {
		dst *string
		v   string
	}{{&files.CA, f.CA}, {&files.Cert, f.Cert}, {&files.Key, f.Key}} {
		if o.v != "" {
			*o.dst = o.v
		}
	}
	return files
}

// Config builds a transfer configuration; server selects the TLS side.
func (f *TransferFlags) Config(server bool, log *slog.Logger) (transfer.Config, error) {
	cfg := transfer.DefaultConfig()
	cfg.CompressLevel = f.ZstdLevel
	cfg.StreamIdleTimeout, cfg.PeerWaitTimeout = f.StreamIdle, f.PeerWait
	cfg.KeepAlive, cfg.DeadPeerTimeout = f.KeepAlive, f.DeadPeer
	cfg.Logger = log
	if f.Plaintext {
		log.Warn("INSECURE: --insecure-plaintext-no-auth: the connection is neither encrypted nor authenticated")
		cfg.InsecurePlaintext = true
		return cfg, nil
	}
	var err error
	if server {
		cfg.TLS, err = f.Files().Server()
	} else {
		cfg.TLS, err = f.Files().Client()
	}
	if err != nil {
		return cfg, fmt.Errorf("%w (create credentials with `migrate-dst certs`, or pass --tls-dir)", err)
	}
	if end, soon := f.Files().ExpiresSoon(); soon {
		log.Warn("this host's certificate expires soon; renew it: migrate-dst certs --out CA-DIR --renew --host NAME=ADDR", "cert", f.Files().Cert, "expires", end.Format(time.DateOnly))
	}
	return cfg, nil
}

// Size renders a byte count for people.
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// SiblingBinary finds a program installed next to the running one.
func SiblingBinary(name string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	p := filepath.Join(filepath.Dir(self), name)
	if _, err := os.Stat(p); err != nil {
		return "", errors.New(name + " not found next to " + self)
	}
	return p, nil
}
