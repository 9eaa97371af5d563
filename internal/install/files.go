package install

import (
	"bytes"
	"path/filepath"
	"strings"

	"github.com/dockmove/dockmove/internal/cli"
)

// The files install writes besides daemon.json: the unit and the config
// file. `migrate-dst generate` prints both for the Debian package, so the
// package and install agree on every byte.

// Unit returns the systemd unit that runs migrate-dst from binDir with
// configFile.
func Unit(binDir, configFile string) []byte {
	return []byte(`# dockmove's destination agent: receives containers that migrate-src moves
# here and restores them under this host's Docker. Written by
# "migrate-dst install"; its settings are in ` + configFile + `.
[Unit]
Description=dockmove destination agent (migrate-dst)
Documentation=man:migrate-dst(1)
Wants=network-online.target
After=network-online.target docker.service containerd.service

[Service]
Type=exec
ExecStart=` + filepath.Join(binDir, "migrate-dst") + ` --config ` + configFile + `
Restart=on-failure
RestartSec=5s
# CRIU needs many descriptors to dump and restore a large process tree.
LimitNOFILE=1048576
# A process tree restored outside any container (--allow-processes) and
# CRIU's page server of a post-copy under way live in this service's
# cgroup: a stop or restart of the agent must not kill them.
KillMode=process

[Install]
WantedBy=multi-user.target
`)
}

// DefaultConfigText is the config file without settings: what the Debian
// package installs, and what install starts from where there is none.
func DefaultConfigText() []byte {
	return []byte(`# migrate-dst's settings: the dockmove-migrate-dst service runs
# "migrate-dst --config" with this file.
#
# One setting a line, KEY = VALUE: the keys are migrate-dst's flags without
# their dashes (migrate-dst --help lists them); a repeatable flag takes one
# line per value; a flag on migrate-dst's command line overrides the file.
# "migrate-dst install --KEY VALUE" sets a key here. For example:
#
#   listen = :7070
#   allow-source = host1
#   tls-dir = /etc/dockmove/tls
`)
}

// mergeSettings returns the config text with settings set: the lines of
// a key they set give way to theirs, in their order, where the first of
// them was; settings of keys the text lacks, and then defaults of keys no
// line sets, are appended. Comments and other keys stay where they are;
// text that needs no change comes back as it is. Empty text starts from
// DefaultConfigText.
func mergeSettings(text []byte, settings, defaults []cli.Setting) []byte {
	if len(bytes.TrimSpace(text)) == 0 {
		text = DefaultConfigText()
	}
	byKey, present := map[string][]cli.Setting{}, map[string]bool{}
	for _, s := range settings {
		byKey[s.Key] = append(byKey[s.Key], s)
	}
	var b bytes.Buffer
	for _, line := range strings.SplitAfter(string(text), "\n") {
		trimmed := strings.TrimSpace(line)
		key, _, ok := strings.Cut(trimmed, "=")
		key = strings.TrimSpace(key)
		if !ok || strings.HasPrefix(trimmed, "#") {
			b.WriteString(line)
			continue
		}
		if _, set := byKey[key]; set && !present[key] {
			for _, s := range byKey[key] {
				b.WriteString(cli.FormatSetting(s.Key, s.Value) + "\n")
			}
		} else if !set {
			b.WriteString(line)
		}
		present[key] = true
	}
	var add []cli.Setting
	for _, s := range settings {
		if !present[s.Key] {
			add = append(add, s)
		}
	}
	for _, d := range defaults {
		if _, set := byKey[d.Key]; !present[d.Key] && !set {
			add = append(add, d)
		}
	}
	if len(add) > 0 {
		if b.Len() > 0 && !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
			b.WriteByte('\n')
		}
		for _, s := range add {
			b.WriteString(cli.FormatSetting(s.Key, s.Value) + "\n")
		}
	}
	if bytes.Equal(b.Bytes(), text) {
		return text
	}
	return b.Bytes()
}
