//go:build !linux

package restoreruntime

import "os"

// RemoveState deletes a container's state directory.
func RemoveState(dir string) error { return os.RemoveAll(dir) }
