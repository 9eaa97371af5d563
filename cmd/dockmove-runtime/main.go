// Command dockmove-runtime is the OCI runtime migrate-dst registers with
// dockerd: runc, except that it restores a migrated container from its
// CRIU images the first time the container is created. See internal/shim.
package main

import (
	"os"

	"github.com/dockmove/dockmove/internal/shim"
)

func main() { os.Exit(shim.Main(os.Args[1:])) }
