//go:build linux

package main

import (
	"errors"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/dockmove/dockmove/internal/cli"
	"github.com/dockmove/dockmove/migrate"
)

// generate writes migrate-src's man page or bash completion.
func (a *app) generate(args []string) error {
	var out string
	fs := pflag.NewFlagSet("generate", pflag.ContinueOnError)
	fs.StringVarP(&out, "out", "o", "", "write it to this file (default: standard output)")
	err := cli.ParseFlags(fs, "generate", args)
	switch {
	case errors.Is(err, pflag.ErrHelp):
		a.help.Write(a.stdout, "generate", fs)
		return err
	case err != nil:
		return err
	case fs.NArg() != 1:
		return cli.Usagef("generate", "name one document: %s", docKinds())
	}
	kind, err := cli.ParseDocKind(fs.Arg(0))
	if err != nil {
		return cli.Usagef("generate", "unknown document %q: one of %s", fs.Arg(0), docKinds())
	}
	d := cli.CollectDocs(a.help, migrate.Version, func(h cli.Help, args []string) {
		quiet := &app{help: h, stdout: io.Discard, stderr: io.Discard}
		quiet.run(args)
	})
	d.SeeAlso = []string{"migrate-dst"}
	return cli.WriteTo(out, a.stdout, func(w io.Writer) error { return d.Write(w, kind) })
}

func docKinds() string {
	var kinds []string
	for _, k := range cli.DocKinds {
		kinds = append(kinds, k.String())
	}
	return strings.Join(kinds, ", ")
}
