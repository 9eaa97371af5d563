// Package mountinfo reads the kernel's mount tables (/proc/PID/mountinfo).
package mountinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// OverlayUpper finds the overlay mounted at mountpoint in a mountinfo table
// and returns its upperdir option.
func OverlayUpper(mountinfo []byte, mountpoint string) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	sc.Buffer(make([]byte, 64<<10), 1<<20) // overlay lines list every lower layer
	for sc.Scan() {
		// id parent maj:min root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 || unescapeMountinfo(f[4]) != mountpoint || g[0] != "overlay" {
			continue
		}
		for _, o := range strings.Split(g[2], ",") {
			if v, ok := strings.CutPrefix(o, "upperdir="); ok {
				return unescapeMountinfo(v), nil
			}
		}
		return "", fmt.Errorf("the overlay at %s has no upper directory", mountpoint)
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("no overlay mounted at %s", mountpoint)
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
