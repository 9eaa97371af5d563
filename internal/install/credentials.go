package install

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dockmove/dockmove/transfer"
)

// CheckCredentials checks that the agent's TLS files are there and load
// as migrate-dst would load them; a missing one is named with the command
// that makes it.
func CheckCredentials(files transfer.TLSFiles) error {
	var missing []string
	for _, p := range []string{files.CA, files.Cert, files.Key} {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		dir := filepath.Dir(files.Key)
		return fmt.Errorf(`%w: missing %s: make them on one host with "migrate-dst certs --out tls --host NAME=ADDR ..." (one --host for each host) and copy tls/NAME to %s on this host (or pass --tls-dir)`,
			ErrCredentials, strings.Join(missing, ", "), dir)
	}
	if _, err := files.Server(); err != nil {
		return fmt.Errorf("%w: %v", ErrCredentials, err)
	}
	return nil
}

// checkPrograms checks that binDir holds the programs the unit and the
// runtime entry name.
func checkPrograms(binDir string) error {
	for _, name := range []string{"migrate-dst", "dockmove-runtime"} {
		p := filepath.Join(binDir, name)
		st, err := os.Stat(p)
		if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("%w: %s is not an executable file (migrate-dst and dockmove-runtime must be in one directory; or pass --bin-dir)", ErrProgram, p)
		}
	}
	return nil
}
