//go:build !linux

package restoreruntime

import "errors"

// The restore runtime runs only where runc does; elsewhere the package
// builds (its plan types are shared) and a restore fails plainly.

var errNotLinux = errors.New("restore runtime: restoring a container needs Linux")

func prepareNetns(string, []string) (string, error) { return "", errNotLinux }
func releaseNetns(string)                           {}
func recordPID(string, string) error                { return errNotLinux }
func dropRestoreIface(string) error                 { return nil }
func placeRootfs(string, string) error              { return errNotLinux }
func dropLocalDelivery(int) error                   { return errNotLinux }
func readPID(string) (int, error)                   { return 0, errNotLinux }
