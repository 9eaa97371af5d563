// Command mkdeb builds dockmove's Debian package with nfpm: the static
// binaries of `make build`, the systemd unit, the config file (a
// conffile), the docker-migrate CLI plugin, bash completions and man
// pages. The binaries write the unit, the config file, the completions
// and the man pages themselves (`generate`), so the package holds byte
// for byte what `migrate-dst install` writes.
//
//	mkdeb --bin DIR --version-file internal/version/version.go --out DIR
//
// It is a module of its own so that nfpm's dependencies stay out of
// dockmove's. It packages for the architecture it runs on: it runs the
// binaries.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	var opts options
	flag.StringVar(&opts.bin, "bin", "bin", "the directory holding migrate-src, migrate-dst and dockmove-runtime (make build's)")
	flag.StringVar(&opts.versionFile, "version-file", "internal/version/version.go", "the Go file declaring dockmove's Version")
	flag.StringVar(&opts.out, "out", "dist", "the directory the package is written to")
	flag.Parse()
	path, err := build(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkdeb:", err)
		os.Exit(1)
	}
	fmt.Println(path)
}
