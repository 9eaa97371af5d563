//go:build linux

package main

import "github.com/dockmove/dockmove/internal/cli"

// help is migrate-dst's help; run dispatches on the same command names.
var help = cli.Help{
	Program: "migrate-dst",
	About:   "Receive containers that migrate-src moves here, live, and restore them under this host's Docker.",
	Commands: []cli.Command{{
		Name:    "serve",
		Usage:   []string{"[serve] [--listen ADDR] [flags]"},
		Summary: "accept migrations and restore them here (the default command)",
		Examples: []string{
			"certs --out tls --host host1=10.0.0.1 --host host2=10.0.0.2",
			"install-runtime",
			"--listen :7070 --allow-source host1",
			"--config /etc/dockmove/migrate-dst.conf",
			"status --json",
		},
	}, {
		Name: "certs",
		Usage: []string{
			"certs --out DIR --host NAME[=ADDR,...] [--role NAME=ROLE] [--renew] ...",
			"certs --out DIR --revoke NAME",
		},
		Summary: "make the CA and each host's TLS certificate; issue more, renew or revoke them",
		Examples: []string{
			"certs --out tls --host host1=10.0.0.1 --host host2=10.0.0.2",
			"certs --out tls --host host3=10.0.0.3 --role host3=destination",
			"certs --out tls --renew --host host1=10.0.0.1",
			"certs --out tls --revoke host3",
		},
	}, {
		Name:     "install-runtime",
		Usage:    []string{"install-runtime [flags]"},
		Summary:  "register the restore runtime with this host's dockerd, and reload dockerd",
		Examples: []string{"install-runtime", "install-runtime --from ./dockmove-runtime --binary /usr/local/bin/dockmove-runtime"},
	}, {
		Name:     "uninstall-runtime",
		Usage:    []string{"uninstall-runtime [flags]"},
		Summary:  "unregister the restore runtime, unless a container still uses it",
		Examples: []string{"uninstall-runtime"},
	}, {
		Name:    "install",
		Usage:   []string{"install [--root DIR] [--now] [install flags] [serve flags]"},
		Summary: "make this host a destination: config file (the serve flags given), systemd unit, restore runtime; credentials checked",
		Examples: []string{
			"install --listen 10.0.0.2:7070 --allow-source host1",
			"install --now",
			"install --root /tmp/img --daemon-json /tmp/img/daemon.json --json",
		},
	}, {
		Name:     "uninstall",
		Usage:    []string{"uninstall [--root DIR] [--now] [flags]"},
		Summary:  "undo what install did: its files removed, daemon.json as it was before",
		Examples: []string{"uninstall", "uninstall --now"},
	}, {
		Name:     "generate",
		Usage:    []string{"generate man|bash-completion|systemd-unit|config [flags]"},
		Summary:  "print the man page, the bash completion, or a file install writes",
		Examples: []string{"generate man > migrate-dst.1", "generate bash-completion > /etc/bash_completion.d/migrate-dst", "generate systemd-unit --bin-dir /usr/bin"},
	}, {
		Name:     "status",
		Usage:    []string{"status [--json] [--work-dir DIR]"},
		Summary:  "list the migrations under way here, or in doubt until their source resolves them",
		Examples: []string{"status", "status --json"},
	}, {
		Name:     "help",
		Usage:    []string{"help [COMMAND]"},
		Summary:  "print the help of migrate-dst or of one command (as COMMAND --help does)",
		Examples: []string{"help certs"},
	}},
}
