//go:build linux

package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dockmove/dockmove/internal/install"
	"github.com/dockmove/dockmove/transfer"
)

// TestServeReadsItsConfigFile: serve takes its flags from --config's
// file, the command line overriding it flag by flag.
func TestServeReadsItsConfigFile(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "migrate-dst.conf")
	os.WriteFile(conf, []byte("# test\nlisten = 10.0.0.2:7070\nallow-source = host1\nallow-source = host3\nzstd-level = 3\nwork-dir = /srv/work\n"), 0o644)
	f := newServeFlags()
	a := &agent{stdout: new(strings.Builder), stderr: new(strings.Builder)}
	if err := a.parseServe(f, []string{"--config", conf, "--zstd-level", "5"}); err != nil {
		t.Fatal(err)
	}
	if f.listen != "10.0.0.2:7070" || !reflect.DeepEqual(f.allowSources, []string{"host1", "host3"}) || f.tf.ZstdLevel != 5 || f.cfg.WorkDir != "/srv/work" {
		t.Fatalf("listen %q, sources %q, zstd %d, work dir %q", f.listen, f.allowSources, f.tf.ZstdLevel, f.cfg.WorkDir)
	}
}

func TestServeConfigFileErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		mode       fs.FileMode
		says       string
	}{
		{"unknown key", "listen = :7071\n\nlisten-addr = :7072\n", 0o644, ":3: listen-addr: unknown key"},
		{"config in a config", "config = /etc/other.conf\n", 0o644, ":1: config: unknown key"},
		{"bad value", "zstd-level = fast\n", 0o644, ":1: zstd-level:"},
		{"not KEY = VALUE", "--listen :7071\n", 0o644, ":1: want KEY = VALUE"},
		{"writable by others", "listen = :7071\n", 0o666, "writable by other users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "migrate-dst.conf")
			os.WriteFile(conf, []byte(tc.text), 0o644)
			os.Chmod(conf, tc.mode)
			code, _, errOut := runDst(t, "--config", conf)
			if code != 1 || !strings.Contains(errOut, conf) || !strings.Contains(errOut, tc.says) {
				t.Fatalf("exit %d, stderr %q; want 1 naming %s and %q", code, errOut, conf, tc.says)
			}
		})
	}
}

// dstHost is a temporary root with migrate-dst's programs and
// credentials, and the tree before install.
func dstHost(t *testing.T) (root, binDir string, tls transfer.TLSFiles) {
	t.Helper()
	root = t.TempDir()
	binDir = filepath.Join(root, "opt/dockmove/bin")
	os.MkdirAll(binDir, 0o755)
	for _, p := range []string{"migrate-dst", "dockmove-runtime"} {
		os.WriteFile(filepath.Join(binDir, p), []byte("#!/bin/sh\n"), 0o755)
	}
	if err := transfer.WriteBundle(filepath.Join(root, "bundle"), []transfer.BundleHost{{Name: "host2"}}); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "etc/docker"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/docker/daemon.json"), []byte(`{"debug":true}`), 0o644)
	return root, binDir, transfer.HostTLSFiles(filepath.Join(root, "bundle/host2"))
}

func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, _ := d.Info()
		data, _ := os.ReadFile(p)
		out[p] = info.Mode().String() + " " + string(data)
		return nil
	})
	return out
}

// TestInstallCommand: install writes what serve then reads (the flags
// given, the paths below --root), a second install changes nothing, and
// uninstall leaves the tree as it was.
func TestInstallCommand(t *testing.T) {
	root, binDir, tls := dstHost(t)
	before := tree(t, root)
	args := []string{"install", "--root", root, "--bin-dir", binDir, "--tls-dir", filepath.Dir(tls.Key), "--json",
		"--listen", "10.0.0.2:7070", "--allow-source", "host1,host3", "--restore-criu-option", "tcp-close"}
	code, out, errOut := runDst(t, args...)
	if code != 0 {
		t.Fatalf("install: exit %d: %s", code, errOut)
	}
	var res install.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Changes) != 3 || !res.DockerdNotRunning {
		t.Fatalf("install's report: %v\n%s", err, out)
	}
	conf := filepath.Join(root, "etc/dockmove/migrate-dst.conf")
	f := newServeFlags()
	a := &agent{stdout: new(strings.Builder), stderr: new(strings.Builder)}
	if err := a.parseServe(f, []string{"--config", conf}); err != nil {
		t.Fatal(err)
	}
	if f.listen != "10.0.0.2:7070" || !reflect.DeepEqual(f.allowSources, []string{"host1", "host3"}) || f.tf.TLSDir != filepath.Dir(tls.Key) ||
		f.cfg.WorkDir != filepath.Join(root, "var/lib/dockmove/destination") || f.cfg.RuntimeState != filepath.Join(root, "var/lib/dockmove/restore") ||
		!reflect.DeepEqual(f.cfg.RestoreCRIUOptions, []string{"tcp-close"}) {
		t.Fatalf("serve reads back %+v", f)
	}
	unit, _ := os.ReadFile(filepath.Join(root, "etc/systemd/system", install.UnitName))
	if !strings.Contains(string(unit), "ExecStart="+binDir+"/migrate-dst --config "+conf+"\n") {
		t.Fatalf("unit:\n%s", unit)
	}
	installed := tree(t, root)
	if code, out, errOut := runDst(t, args...); code != 0 || strings.Contains(out, `"created"`) || strings.Contains(out, `"updated"`) {
		t.Fatalf("second install: exit %d: %s%s", code, out, errOut)
	}
	if !reflect.DeepEqual(installed, tree(t, root)) {
		t.Fatal("a second install changed the tree")
	}
	if code, out, errOut := runDst(t, "uninstall", "--root", root, "--no-docker"); code != 0 || !strings.Contains(out, "restored "+filepath.Join(root, "etc/docker/daemon.json")) {
		t.Fatalf("uninstall: exit %d: %s%s", code, out, errOut)
	}
	if !reflect.DeepEqual(before, tree(t, root)) {
		t.Fatal("the tree after uninstall is not the tree before install")
	}
}

// TestInstallCommandRefusals: a setting serve would refuse, or missing
// credentials, stop install before it writes anything.
func TestInstallCommandRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		says string
	}{
		{"no credentials", []string{"--listen", ":7070"}, "copy tls/NAME to "},
		{"plaintext on every address", []string{"--insecure-plaintext-no-auth", "--listen", ":7070"}, "loopback"},
		{"bad network range", []string{"--tls-dir", "TLS", "--network-range", "nocidr"}, "NAME=CIDR"},
		{"version", []string{"--version"}, "not a setting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, binDir, tls := dstHost(t)
			before := tree(t, root)
			args := append([]string{"install", "--root", root, "--bin-dir", binDir}, tc.args...)
			for i, a := range args {
				if a == "TLS" {
					args[i] = filepath.Dir(tls.Key)
				}
			}
			code, _, errOut := runDst(t, args...)
			if code == 0 || !strings.Contains(errOut, tc.says) {
				t.Fatalf("exit %d, stderr %q; want a refusal saying %q", code, errOut, tc.says)
			}
			if !reflect.DeepEqual(before, tree(t, root)) {
				t.Fatal("a refused install changed the tree")
			}
		})
	}
}

// TestGenerate: the documents migrate-dst prints about itself.
func TestGenerate(t *testing.T) {
	code, unit, _ := runDst(t, "generate", "systemd-unit", "--bin-dir", "/usr/bin")
	if code != 0 || unit != string(install.Unit("/usr/bin", "/etc/dockmove/migrate-dst.conf")) {
		t.Errorf("systemd-unit: exit %d:\n%s", code, unit)
	}
	code, conf, _ := runDst(t, "generate", "config")
	if code != 0 || conf != string(install.DefaultConfigText()) {
		t.Errorf("config: exit %d:\n%s", code, conf)
	}
	code, page, _ := runDst(t, "generate", "man")
	for _, want := range []string{".TH MIGRATE-DST 1", `.SS "migrate\-dst install"`, `\fB\-\-daemon\-json\fR`, `\fB\-\-config\fR \fIstring\fR`, ".BR migrate-src (1)"} {
		if code != 0 || !strings.Contains(page, want) {
			t.Errorf("man page (exit %d) lacks %q", code, want)
		}
	}
	if groff, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = strings.NewReader(page)
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("groff: %v\n%s", err, out)
		}
	}
	code, completion, _ := runDst(t, "generate", "bash-completion")
	for _, want := range []string{"complete -o default -F _dockmove_migrate_dst migrate-dst", "install) flags=", "--daemon-json", "--metrics-listen"} {
		if code != 0 || !strings.Contains(completion, want) {
			t.Errorf("bash completion (exit %d) lacks %q", code, want)
		}
	}
	if code, _, errOut := runDst(t, "generate", "zsh-completion"); code != 2 || !strings.Contains(errOut, "man, bash-completion, systemd-unit, config") {
		t.Errorf("unknown document: exit %d, %q", code, errOut)
	}
}
