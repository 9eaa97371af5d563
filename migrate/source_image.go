//go:build linux

package migrate

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
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

// untagArchive copies the `docker save` archive src to dst without the
// names it would give images: `docker load` applies an archive's tags
// (manifest.json's RepoTags, the legacy repositories file, an OCI index's
// name annotations) to whatever it loads, so a source could otherwise
// re-point a tag this host already uses (its `debian:12`) at the source's
// image. The destination tags the loaded image itself, only with the
// container's reference and only where that name is free. The archive must
// hold exactly one image.
func untagArchive(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	err = copyUntagged(tar.NewReader(in), tar.NewWriter(out))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// imageNameAnnotations are the OCI index annotations that name an image.
var imageNameAnnotations = []string{"io.containerd.image.name", "org.opencontainers.image.ref.name"}

// copyUntagged copies an image archive without its names. Entry names must
// be plain relative paths as `docker save` writes them: a loader cleans
// names, so "./manifest.json" would be a second manifest.json that this
// copy left as it came.
func copyUntagged(tr *tar.Reader, tw *tar.Writer) error {
	manifests, indexes := 0, 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			if manifests != 1 {
				return fmt.Errorf("image archive has %d manifest.json, want one", manifests)
			}
			if indexes > 1 {
				return fmt.Errorf("image archive has %d index.json, want at most one", indexes)
			}
			return tw.Close()
		}
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(h.Name, "/")
		if name == "" || path.IsAbs(name) || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("image archive entry %q: not a plain relative name", h.Name)
		}
		var rewritten []byte
		switch name {
		case "repositories":
			continue
		case "manifest.json":
			manifests++
			rewritten, err = untagManifest(tr)
		case "index.json":
			indexes++
			rewritten, err = untagIndex(tr)
		}
		if err != nil {
			return fmt.Errorf("image archive %s: %w", h.Name, err)
		}
		if rewritten != nil {
			h.Size = int64(len(rewritten))
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if rewritten != nil {
			_, err = tw.Write(rewritten)
		} else {
			_, err = io.Copy(tw, tr)
		}
		if err != nil {
			return err
		}
	}
}

// untagManifest drops RepoTags from a manifest.json of exactly one image.
func untagManifest(r io.Reader) ([]byte, error) {
	var m []map[string]json.RawMessage
	if err := json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(&m); err != nil {
		return nil, err
	}
	if len(m) != 1 {
		return nil, fmt.Errorf("%d images, want one", len(m))
	}
	delete(m[0], "RepoTags")
	return json.Marshal(m)
}

// untagIndex drops the name annotations of an OCI index's manifests.
func untagIndex(r io.Reader) ([]byte, error) {
	var idx map[string]json.RawMessage
	if err := json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(&idx); err != nil {
		return nil, err
	}
	var list []map[string]json.RawMessage
	if raw, ok := idx["manifests"]; ok {
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, err
		}
	}
	if len(list) > 1 {
		return nil, fmt.Errorf("%d images, want one", len(list))
	}
	for _, d := range list {
		var ann map[string]string
		if raw, ok := d["annotations"]; ok {
			if err := json.Unmarshal(raw, &ann); err != nil {
				return nil, err
			}
		}
		for _, k := range imageNameAnnotations {
			delete(ann, k)
		}
		raw, err := json.Marshal(ann)
		if err != nil {
			return nil, err
		}
		d["annotations"] = raw
	}
	raw, err := json.Marshal(list)
	if err != nil {
		return nil, err
	}
	idx["manifests"] = raw
	return json.Marshal(idx)
}
