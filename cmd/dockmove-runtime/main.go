// Command dockmove-runtime is the OCI runtime migrate-dst registers with
// dockerd: runc, except that it restores a migrated container from its
// CRIU images the first time the container is created. See internal/restoreruntime.
package main

import (
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/dockmove/dockmove/internal/cli"
	"github.com/dockmove/dockmove/internal/restoreruntime"
	"github.com/dockmove/dockmove/internal/version"
)

func main() {
	printVersion(os.Stdout, os.Args[1:])
	os.Exit(restoreruntime.Main(os.Args[1:]))
}

// printVersion writes the runtime's own version to w when args ask for
// versions; runc's follows (dockerd and people read that).
func printVersion(w io.Writer, args []string) {
	if len(args) == 1 && slices.Contains([]string{"--version", "-v"}, args[0]) {
		fmt.Fprintln(w, cli.Version("dockmove-runtime", version.Version))
	}
}
