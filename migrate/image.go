//go:build linux

package migrate

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Shipping an image sends only the layers the destination lacks. `docker
// load` looks each layer up by its chain before it opens the layer's file,
// so a `docker save` archive stripped of the layers the destination already
// has (a common prefix of the image's layer chain) loads there unchanged.

// manifestEntry is one image of a `docker save` manifest.json.
type manifestEntry struct {
	Config string
	Layers []string
}

// stripLayers copies the `docker save` archive src to dst without the
// files of its first n layers, and returns how many bytes it left out.
func stripLayers(src, dst string, n int) (int64, error) {
	if n == 0 {
		return 0, os.Rename(src, dst)
	}
	drop, err := layerFiles(src, n)
	if err != nil {
		return 0, err
	}
	in, err := os.Open(src)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	saved, err := copyTarWithout(tar.NewReader(in), tar.NewWriter(out), drop)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return saved, err
}

// layerFiles reads manifest.json and names the files of the first n layers.
func layerFiles(archive string, n int) (map[string]bool, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, errors.New("image archive has no manifest.json")
		}
		if err != nil {
			return nil, err
		}
		if h.Name != "manifest.json" {
			continue
		}
		var m []manifestEntry
		if err := json.NewDecoder(tr).Decode(&m); err != nil {
			return nil, fmt.Errorf("image manifest: %w", err)
		}
		if len(m) != 1 || len(m[0].Layers) < n {
			return nil, fmt.Errorf("image manifest lists %d images, want one with at least %d layers", len(m), n)
		}
		drop := map[string]bool{}
		for _, l := range m[0].Layers[:n] {
			drop[l] = true
		}
		return drop, nil
	}
}

func copyTarWithout(tr *tar.Reader, tw *tar.Writer, drop map[string]bool) (int64, error) {
	var saved int64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return saved, tw.Close()
		}
		if err != nil {
			return saved, err
		}
		if drop[h.Name] {
			saved += h.Size
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return saved, err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return saved, err
		}
	}
}

// commonLayers is the length of the longest prefix of want that one of
// the local images' layer chains starts with.
func commonLayers(want []string, local [][]string) int {
	best := 0
	for _, have := range local {
		n := 0
		for n < len(want) && n < len(have) && want[n] == have[n] {
			n++
		}
		best = max(best, n)
	}
	return best
}
