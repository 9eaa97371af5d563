//go:build linux

package migrate

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
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
// hold exactly one image, the container's: want is its ID as the source's
// Docker reports it (imageArchive.check says how that is checked).
func untagArchive(src, dst, want string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	err = copyUntagged(tar.NewReader(in), tar.NewWriter(out), want)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// imageNameAnnotations are the OCI index annotations that name an image.
var imageNameAnnotations = []string{"io.containerd.image.name", "org.opencontainers.image.ref.name"}

// errNotTheImage reports an image archive that does not hold (only) the
// image the container runs.
var errNotTheImage = errors.New("the image archive does not hold the container's image")

// Bounds on what copyUntagged keeps of an archive: `docker save` of one
// image writes a few entries per layer, and its manifests and indexes are
// a few KiB.
const (
	maxArchiveEntries = 1 << 14
	maxKeptBlob       = 1 << 20
	maxKeptBlobs      = 8 << 20
)

// copyUntagged copies an image archive without its names, and checks as it
// goes that it holds exactly the image want (imageArchive.check). Entry
// names must be plain relative paths as `docker save` writes them: a loader
// cleans names, so "./manifest.json" would be a second manifest.json that
// this copy left as it came.
func copyUntagged(tr *tar.Reader, tw *tar.Writer, want string) error {
	a := imageArchive{want: want, types: map[string]byte{}, parents: map[string]bool{},
		digests: map[string]string{}, blobs: map[string][]byte{}}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if err := a.copyEntry(h, tr, tw); err != nil {
			return err
		}
	}
	if err := a.check(); err != nil {
		return err
	}
	return tw.Close()
}

// imageArchive is what copyUntagged learns of an archive while copying it:
// enough to tell at its end which image a load makes of it.
type imageArchive struct {
	want      string
	manifests int               // manifest.json entries
	indexes   int               // index.json entries
	config    string            // the entry manifest.json's one image names as its config
	top       string            // the digest index.json's one descriptor names
	types     map[string]byte   // entry name -> tar type
	parents   map[string]bool   // the directories entries are below
	digests   map[string]string // regular entry -> digest of the bytes copied
	blobs     map[string][]byte // digest -> bytes, of small blobs (manifests, indexes)
	kept      int               // bytes in blobs
}

// copyEntry copies one entry, untagged if it names images, hashing a
// regular file's bytes as they go by.
func (a *imageArchive) copyEntry(h *tar.Header, tr *tar.Reader, tw *tar.Writer) error {
	name := strings.TrimSuffix(h.Name, "/")
	if err := a.place(name, h); err != nil {
		return err
	}
	var rewritten []byte
	var err error
	switch name {
	case "repositories":
		return nil
	case "manifest.json":
		a.manifests++
		rewritten, a.config, err = untagManifest(tr)
	case "index.json":
		a.indexes++
		rewritten, a.top, err = untagIndex(tr)
	}
	if err != nil {
		return fmt.Errorf("image archive %s: %w", h.Name, err)
	}
	if rewritten != nil {
		if h.Typeflag != tar.TypeReg {
			return fmt.Errorf("image archive %s: not a regular file", h.Name)
		}
		h.Size = int64(len(rewritten))
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	switch {
	case rewritten != nil:
		_, err = tw.Write(rewritten)
	case h.Typeflag == tar.TypeReg:
		err = a.copyFile(name, h.Size, tr, tw)
	default:
		_, err = io.Copy(tw, tr)
	}
	return err
}

// place refuses an entry whose name is not plain, that comes twice (which
// of the two a loader reads is its choice), or that lies below another
// that is not a directory (a loader would write it, or read it, through a
// link: not the bytes checked here).
func (a *imageArchive) place(name string, h *tar.Header) error {
	if name == "" || path.IsAbs(name) || path.Clean(name) != name || name == ".." || strings.HasPrefix(name, "../") {
		return fmt.Errorf("image archive entry %q: not a plain relative name", h.Name)
	}
	if _, ok := a.types[name]; ok {
		return fmt.Errorf("image archive entry %q comes twice", h.Name)
	}
	if len(a.types) >= maxArchiveEntries {
		return fmt.Errorf("image archive has more than %d entries", maxArchiveEntries)
	}
	if h.Typeflag != tar.TypeDir && a.parents[name] {
		return fmt.Errorf("image archive entry %q: entries lie below it and it is not a directory", h.Name)
	}
	for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
		if t, ok := a.types[dir]; ok && t != tar.TypeDir {
			return fmt.Errorf("image archive entry %q: below %q, which is not a directory", h.Name, dir)
		}
		a.parents[dir] = true
	}
	a.types[name] = h.Typeflag
	return nil
}

// copyFile copies a regular file's size bytes and records their digest;
// a small blob's bytes are kept too (a manifest or an index, read in check).
// An OCI layout's blob must hold the content its name says.
func (a *imageArchive) copyFile(name string, size int64, tr *tar.Reader, tw *tar.Writer) error {
	sum := sha256.New()
	var kept bytes.Buffer
	w := io.MultiWriter(tw, sum)
	keep := strings.HasPrefix(name, "blobs/sha256/") && size <= maxKeptBlob && a.kept+int(size) <= maxKeptBlobs
	if keep {
		w = io.MultiWriter(w, &kept)
	}
	if _, err := io.Copy(w, tr); err != nil {
		return err
	}
	digest := "sha256:" + hex.EncodeToString(sum.Sum(nil))
	a.digests[name] = digest
	if hexName, ok := strings.CutPrefix(name, "blobs/sha256/"); ok && "sha256:"+hexName != digest {
		return fmt.Errorf("%w: blob %s holds content of digest %s", errNotTheImage, name, digest)
	}
	if keep {
		a.blobs[digest] = kept.Bytes()
		a.kept += kept.Len()
	}
	return nil
}

// check tells whether a load of the archive makes exactly the image want,
// from digests of the bytes copied (a name proves nothing). Docker's two
// image stores name an image differently: the classic store by its
// config's digest (what a load of the archive computes from the config
// manifest.json names), the containerd store by the digest of the manifest
// or index it keeps for it (which `docker save` names in index.json). So
// want must be either the config's digest, or the digest of index.json's
// one descriptor whose blob, present in the archive, is a manifest of that
// config or an index of such a manifest (present too): either way, both
// stores load the same image, the one want names.
func (a *imageArchive) check() error {
	if a.manifests != 1 {
		return fmt.Errorf("image archive has %d manifest.json, want one", a.manifests)
	}
	if a.indexes > 1 {
		return fmt.Errorf("image archive has %d index.json, want at most one", a.indexes)
	}
	config, ok := a.digests[a.config]
	if !ok {
		return fmt.Errorf("%w: its manifest names config %q, not a regular file of the archive", errNotTheImage, a.config)
	}
	if config == a.want {
		return nil
	}
	if a.top != "" && a.top == a.want && a.leadsTo(a.top, config, 2) {
		return nil
	}
	return fmt.Errorf("%w: it holds the image of config %s (index.json names %q), the container's is %s", errNotTheImage, config, a.top, a.want)
}

// leadsTo reports whether the kept blob digest is a manifest of config, or
// (depth allowing) an index of a kept blob that leads to it.
func (a *imageArchive) leadsTo(digest, config string, depth int) bool {
	raw, ok := a.blobs[digest]
	if !ok {
		return false
	}
	var m struct {
		Config    *struct{ Digest string }
		Manifests []struct{ Digest string }
	}
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	if m.Config != nil && m.Config.Digest == config {
		return true
	}
	for _, d := range m.Manifests {
		if depth > 1 && d.Digest != digest && a.leadsTo(d.Digest, config, depth-1) {
			return true
		}
	}
	return false
}

// untagManifest drops RepoTags from a manifest.json of exactly one image,
// and returns the name of that image's config.
func untagManifest(r io.Reader) (untagged []byte, config string, err error) {
	var m []map[string]json.RawMessage
	if err := json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(&m); err != nil {
		return nil, "", err
	}
	if len(m) != 1 {
		return nil, "", fmt.Errorf("%d images, want one", len(m))
	}
	if err := json.Unmarshal(m[0]["Config"], &config); err != nil || config == "" {
		return nil, "", fmt.Errorf("no config named: %v", err)
	}
	delete(m[0], "RepoTags")
	untagged, err = json.Marshal(m)
	return untagged, config, err
}

// untagIndex drops the name annotations of an OCI index's manifests, and
// returns the digest of its one manifest ("" if it lists none).
func untagIndex(r io.Reader) (untagged []byte, top string, err error) {
	var idx map[string]json.RawMessage
	if err := json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(&idx); err != nil {
		return nil, "", err
	}
	var list []map[string]json.RawMessage
	if raw, ok := idx["manifests"]; ok {
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, "", err
		}
	}
	if len(list) > 1 {
		return nil, "", fmt.Errorf("%d images, want one", len(list))
	}
	for _, d := range list {
		if err := json.Unmarshal(d["digest"], &top); err != nil {
			return nil, "", fmt.Errorf("manifest digest: %w", err)
		}
		var ann map[string]string
		if raw, ok := d["annotations"]; ok {
			if err := json.Unmarshal(raw, &ann); err != nil {
				return nil, "", err
			}
		}
		for _, k := range imageNameAnnotations {
			delete(ann, k)
		}
		raw, err := json.Marshal(ann)
		if err != nil {
			return nil, "", err
		}
		d["annotations"] = raw
	}
	raw, err := json.Marshal(list)
	if err != nil {
		return nil, "", err
	}
	idx["manifests"] = raw
	untagged, err = json.Marshal(idx)
	return untagged, top, err
}
