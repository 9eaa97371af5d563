// Command dockmove-runtime is the OCI runtime migrate-dst registers with
// dockerd: runc, except that it restores a migrated container from its
// CRIU images the first time the container is created. See internal/restoreruntime.
package main

import (
	"os"

	"github.com/dockmove/dockmove/internal/restoreruntime"
)

func main() { os.Exit(restoreruntime.Main(os.Args[1:])) }
