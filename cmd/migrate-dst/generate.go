//go:build linux

package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/dockmove/dockmove/internal/cli"
	"github.com/dockmove/dockmove/internal/install"
	"github.com/dockmove/dockmove/migrate"
)

// installDocs are the files of an install that generate writes, beside
// the documents every program has (cli.DocKinds): what the Debian package
// ships, byte for byte what install writes.
var installDocs = []string{"systemd-unit", "config"}

// generate writes one of migrate-dst's documents.
func (a *agent) generate(args []string) error {
	binDir, configFile, out := "", install.DefaultConfig("").ConfigFile, ""
	fs := pflag.NewFlagSet("generate", pflag.ContinueOnError)
	fs.StringVar(&binDir, "bin-dir", "", "systemd-unit: the directory holding migrate-dst (default: this migrate-dst's)")
	fs.StringVar(&configFile, "config", configFile, "systemd-unit: the config file it runs migrate-dst with")
	fs.StringVarP(&out, "out", "o", "", "write it to this file (default: standard output)")
	if err := a.parse(fs, "generate", args, 1); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return cli.Usagef("generate", "name the document: one of %s", strings.Join(generateKinds(), ", "))
	}
	var doc func(w io.Writer) error
	switch what := fs.Arg(0); what {
	case "systemd-unit":
		if binDir == "" {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			binDir = filepath.Dir(self)
		}
		doc = func(w io.Writer) error { _, err := w.Write(install.Unit(binDir, configFile)); return err }
	case "config":
		doc = func(w io.Writer) error { _, err := w.Write(install.DefaultConfigText()); return err }
	default:
		kind, err := cli.ParseDocKind(what)
		if err != nil {
			return cli.Usagef("generate", "unknown document %q: one of %s", what, strings.Join(generateKinds(), ", "))
		}
		doc = func(w io.Writer) error { return a.docs().Write(w, kind) }
	}
	return cli.WriteTo(out, a.stdout, doc)
}

func generateKinds() []string {
	var kinds []string
	for _, k := range cli.DocKinds {
		kinds = append(kinds, k.String())
	}
	return slices.Concat(kinds, installDocs)
}

// docs gathers migrate-dst's help and every command's flags.
func (a *agent) docs() cli.Docs {
	d := cli.CollectDocs(help, migrate.Version, func(h cli.Help, args []string) {
		quiet := &agent{stdout: io.Discard, stderr: io.Discard, collect: h.Collect}
		quiet.run(args)
	})
	d.SeeAlso = []string{"migrate-src"}
	return d
}

// writeHelp writes the help of command name, or in a docs run hands its
// flags over.
func (a *agent) writeHelp(name string, fs *pflag.FlagSet) {
	h := help
	h.Collect = a.collect
	h.Write(a.stdout, name, fs)
}
