package migrate

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCommonLayers(t *testing.T) {
	tests := []struct {
		name  string
		want  []string
		local [][]string
		n     int
	}{
		{"nothing local", []string{"a", "b"}, nil, 0},
		{"base shared", []string{"a", "b", "c"}, [][]string{{"a", "x"}, {"a", "b"}}, 2},
		{"all shared", []string{"a", "b"}, [][]string{{"a", "b", "c"}}, 2},
		{"same layer elsewhere in the chain does not count", []string{"a", "b"}, [][]string{{"b"}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := commonLayers(tt.want, tt.local); got != tt.n {
				t.Fatalf("got %d, want %d", got, tt.n)
			}
		})
	}
}

// saveArchive writes a docker-save-shaped archive with two layers.
func saveArchive(t *testing.T, path string) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	add := func(name, body string) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))})
		io.WriteString(tw, body)
	}
	add("l1/layer.tar", strings.Repeat("1", 1000))
	add("l1/json", "{}")
	add("l2/layer.tar", strings.Repeat("2", 500))
	add("cfg.json", "{}")
	m, _ := json.Marshal([]manifestEntry{{Config: "cfg.json", Layers: []string{"l1/layer.tar", "l2/layer.tar"}}})
	add("manifest.json", string(m))
	tw.Close()
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestStripLayersDropsOnlyTheFirstLayersFiles(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "full.tar"), filepath.Join(dir, "image.tar")
	saveArchive(t, src)
	saved, err := stripLayers(src, dst, 1)
	if err != nil || saved != 1000 {
		t.Fatalf("saved %d, %v", saved, err)
	}
	f, _ := os.Open(dst)
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	if strings.Join(names, " ") != "l1/json l2/layer.tar cfg.json manifest.json" {
		t.Fatalf("archive holds %v", names)
	}
}

// A received image archive loses every name it would give images: a source
// must not re-point this host's own tags (its debian:12) at its image.
func TestUntagArchiveDropsEveryName(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "in.tar"), filepath.Join(dir, "out.tar")
	img := containerdImage("debian:12")
	img.add(tarFile("repositories", `{"debian":{"12":"c"}}`))
	img.write(t, src)
	if err := untagArchive(src, dst, img.id); err != nil {
		t.Fatal(err)
	}
	got := readTar(t, dst)
	if _, ok := got["repositories"]; ok {
		t.Error("the repositories file survived")
	}
	if strings.Contains(got["manifest.json"], "RepoTags") || !strings.Contains(got["manifest.json"], img.layer) {
		t.Errorf("manifest.json: %s", got["manifest.json"])
	}
	if strings.Contains(got["index.json"], "debian") || strings.Contains(got["index.json"], "ref.name") || !strings.Contains(got["index.json"], `"keep":"me"`) {
		t.Errorf("index.json: %s", got["index.json"])
	}
	if got[img.layer] != "layer bytes" {
		t.Errorf("layer: %q", got[img.layer])
	}

	writeTar(t, src, map[string]string{"manifest.json": `[{"Config":"a"},{"Config":"b"}]`})
	if err := untagArchive(src, dst, img.id); err == nil {
		t.Error("an archive of two images was accepted")
	}
	writeTar(t, src, map[string]string{"blobs/sha256/l": "x"})
	if err := untagArchive(src, dst, img.id); err == nil {
		t.Error("an archive without a manifest was accepted")
	}
	// A loader cleans entry names: each of these would be a second
	// manifest.json, repositories or index.json that the copy did not
	// untag (./manifest.json re-tagged host2's debian:12).
	for _, name := range []string{"./manifest.json", "./repositories", "blobs/../index.json", "/manifest.json", "../manifest.json", "blobs//l"} {
		writeTar(t, src, map[string]string{
			"manifest.json": `[{"Config":"blobs/sha256/c","Layers":[]}]`,
			name:            `[{"Config":"blobs/sha256/c","RepoTags":["debian:12"]}]`,
		})
		if err := untagArchive(src, dst, img.id); err == nil || !strings.Contains(err.Error(), "not a plain relative name") {
			t.Errorf("an entry named %q: %v", name, err)
		}
	}
	writeTar(t, src, map[string]string{
		"manifest.json": `[{"Config":"blobs/sha256/c"}]`,
		"index.json":    `{"schemaVersion":2,"manifests":[{"digest":"sha256:a"},{"digest":"sha256:b","annotations":{"io.containerd.image.name":"docker.io/library/debian:12"}}]}`,
	})
	if err := untagArchive(src, dst, img.id); err == nil {
		t.Error("an index of two images was accepted")
	}
}

// An image archive is loaded only if it holds exactly the container's
// image, by the digests of its bytes: its config's digest is the image ID
// (Docker's classic store), or index.json names the image ID (the
// containerd store's) as a manifest of that config or an index of one.
func TestUntagArchiveHoldsExactlyTheImage(t *testing.T) {
	otherConfig := `{"architecture":"amd64","os":"linux","config":{"User":"root"},"rootfs":{"type":"layers","diff_ids":[]}}`
	tests := []struct {
		name  string
		image func() archive
		want  string // "" for the image's own ID
		err   error  // nil: accepted; errAny: refused for another reason
	}{
		{"Docker 20.10 classic store", func() archive { return classicImage() }, "", nil},
		{"Docker 25+ classic store, OCI layout", func() archive { return ociImage(false) }, "", nil},
		{"Docker 28 containerd store, index", func() archive { return containerdImage("") }, "", nil},
		{"containerd store, a single manifest", func() archive { return ociImage(true) }, "", nil},
		{"config digest mismatch", func() archive { return classicImage() }, digest(otherConfig), errNotTheImage},
		{"an index in the archive, the config's digest wanted (a classic store's ID)", func() archive {
			a := containerdImage("")
			a.id = a.config
			return a
		}, "", nil},
		{"containerd store: the manifest's digest is not the image ID", func() archive { return containerdImage("") }, digest("another index"), errNotTheImage},
		{"two images", func() archive {
			a := classicImage()
			a.replace("manifest.json", `[{"Config":"`+a.configName+`","Layers":["l1/layer.tar"]},{"Config":"`+a.configName+`","Layers":[]}]`)
			return a
		}, "", errAny},
		{"config named by one digest with other content", func() archive {
			a := classicImage()
			a.replace(a.configName, otherConfig)
			return a
		}, "", errNotTheImage},
		{"OCI config blob named by one digest with other content", func() archive {
			a := ociImage(false)
			a.replace(a.configName, otherConfig)
			return a
		}, "", errNotTheImage},
		{"manifest.json names another config than the index's manifest", func() archive {
			a := containerdImage("")
			a.add(tarFile("blobs/sha256/"+hexOf(otherConfig), otherConfig))
			a.replace("manifest.json", `[{"Config":"blobs/sha256/`+hexOf(otherConfig)+`","Layers":["`+a.layer+`"]}]`)
			return a
		}, "", errNotTheImage},
		{"index.json names the image, its blob missing", func() archive {
			a := containerdImage("")
			a.remove("blobs/sha256/" + strings.TrimPrefix(a.id, "sha256:"))
			return a
		}, "", errNotTheImage},
		{"config is a symlink", func() archive {
			a := classicImage()
			a.remove(a.configName)
			a.add(tarLink(a.configName, "elsewhere.json"), tarFile("elsewhere.json", a.configBody))
			return a
		}, "", errNotTheImage},
		{"config comes twice", func() archive {
			a := classicImage()
			a.add(tarFile(a.configName, otherConfig))
			return a
		}, "", errAny},
		{"config written again through a symlinked directory", func() archive {
			a := classicImage()
			a.remove(a.configName)
			a.configName = "cfg/" + a.configName
			a.replace("manifest.json", `[{"Config":"`+a.configName+`","Layers":["l1/layer.tar"]}]`)
			a.entries = append([]tarEntry{tarLink("cfg", "real"), tarDir("real/"), tarFile(a.configName, a.configBody)}, a.entries...)
			a.add(tarFile("real/"+path.Base(a.configName), otherConfig))
			return a
		}, "", errAny},
		{"a directory of the config made a symlink after it", func() archive {
			a := classicImage()
			a.remove(a.configName)
			a.configName = "cfg/" + a.configName
			a.replace("manifest.json", `[{"Config":"`+a.configName+`","Layers":["l1/layer.tar"]}]`)
			a.entries = append([]tarEntry{tarFile(a.configName, a.configBody), tarLink("cfg", "real"), tarDir("real/")}, a.entries...)
			return a
		}, "", errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src, dst := filepath.Join(dir, "in.tar"), filepath.Join(dir, "out.tar")
			a := tt.image()
			a.write(t, src)
			want := tt.want
			if want == "" {
				want = a.id
			}
			err := untagArchive(src, dst, want)
			switch {
			case tt.err == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.err == errAny && err == nil, tt.err != nil && tt.err != errAny && !errors.Is(err, tt.err):
				t.Fatalf("got %v, want %v", err, tt.err)
			}
		})
	}
}

// errAny stands for any refusal in a table of archives.
var errAny = errors.New("any error")

// archive is an image archive a test builds: its entries in order, the ID
// the source's Docker reports for its image, and the names of its parts.
type archive struct {
	entries    []tarEntry
	id         string
	config     string // the config's digest
	configName string
	configBody string
	layer      string // the layer's entry
	manifest   string // the manifest's digest, in an OCI layout
}

type tarEntry struct {
	hdr  tar.Header
	body string
}

func tarFile(name, body string) tarEntry {
	return tarEntry{tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}, body}
}

func tarDir(name string) tarEntry {
	return tarEntry{tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeDir}, ""}
}

func tarLink(name, to string) tarEntry {
	return tarEntry{tar.Header{Name: name, Linkname: to, Mode: 0o777, Typeflag: tar.TypeSymlink}, ""}
}

func (a *archive) add(e ...tarEntry) { a.entries = append(a.entries, e...) }

func (a *archive) remove(name string) {
	a.entries = slices.DeleteFunc(a.entries, func(e tarEntry) bool { return e.hdr.Name == name })
}

// replace gives the entry name other content, under the same name.
func (a *archive) replace(name, body string) {
	for i, e := range a.entries {
		if e.hdr.Name == name {
			a.entries[i] = tarFile(name, body)
		}
	}
}

func (a *archive) write(t *testing.T, file string) {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range a.entries {
		if err := tw.WriteHeader(&e.hdr); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func hexOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func digest(s string) string { return "sha256:" + hexOf(s) }

// imageConfig is an image's config with one layer of content layer.
func imageConfig(layer string) string {
	return `{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["` + digest(layer) + `"]}}`
}

// classicImage is what `docker save` writes on Docker 20.10 (classic
// store): the config named by its digest, which is the image ID, a layer
// directory, the repositories file.
func classicImage() archive {
	config := imageConfig("layer bytes")
	a := archive{id: digest(config), config: digest(config), configName: hexOf(config) + ".json", configBody: config, layer: "l1/layer.tar"}
	a.add(tarDir("l1/"), tarFile("l1/VERSION", "1.0"), tarFile("l1/json", "{}"), tarFile("l1/layer.tar", "layer bytes"),
		tarFile(a.configName, config),
		tarFile("repositories", `{"debian":{"12":"l1"}}`),
		tarFile("manifest.json", `[{"Config":"`+a.configName+`","RepoTags":["debian:12"],"Layers":["l1/layer.tar"]}]`))
	return a
}

// ociImage is what `docker save` writes on Docker 25 and later: an OCI
// layout whose index.json names the image's manifest. The image ID is the
// config's digest in the classic store; in the containerd store, an image
// made locally is a single manifest, whose digest is its ID (byManifest).
func ociImage(byManifest bool) archive {
	a := ociBlobs()
	index := `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + a.manifest + `","size":1}]}`
	a.add(tarFile("index.json", index), a.manifestJSON("debian:12"), tarFile("oci-layout", `{"imageLayoutVersion":"1.0.0"}`))
	if byManifest {
		a.id = a.manifest
	}
	return a
}

// containerdImage is what `docker save` writes on Docker 28 with the
// containerd image store: index.json names the image's index (a pulled
// image's, listing its platforms' manifests, only this one's present),
// whose digest is the image ID.
func containerdImage(tag string) archive {
	a := ociBlobs()
	idx := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + a.manifest + `","size":1,"platform":{"architecture":"amd64","os":"linux"}},` +
		`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + digest("arm64 manifest") + `","size":1,"platform":{"architecture":"arm64","os":"linux"}}]}`
	a.id = digest(idx)
	a.add(tarFile("blobs/sha256/"+hexOf(idx), idx))
	ann := `"keep":"me"`
	if tag != "" {
		ann += `,"io.containerd.image.name":"docker.io/library/` + tag + `","org.opencontainers.image.ref.name":"12"`
	}
	index := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"` + a.id + `","size":1,"annotations":{` + ann + `}}]}`
	a.add(tarFile("index.json", index), a.manifestJSON(tag), tarFile("oci-layout", `{"imageLayoutVersion":"1.0.0"}`))
	return a
}

// ociBlobs are the blobs of an OCI layout: a layer, a config, a manifest.
func ociBlobs() archive {
	config := imageConfig("layer bytes")
	a := archive{id: digest(config), config: digest(config), configName: "blobs/sha256/" + hexOf(config), configBody: config,
		layer: "blobs/sha256/" + hexOf("layer bytes")}
	manifest := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` +
		a.config + `","size":1},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"` + digest("layer bytes") + `","size":11}]}`
	a.manifest = digest(manifest)
	a.add(tarDir("blobs/"), tarDir("blobs/sha256/"), tarFile(a.layer, "layer bytes"), tarFile(a.configName, config),
		tarFile("blobs/sha256/"+hexOf(manifest), manifest))
	return a
}

// manifestJSON is `docker save`'s manifest.json for an OCI layout.
func (a *archive) manifestJSON(tag string) tarEntry {
	tags := "null"
	if tag != "" {
		tags = `["` + tag + `"]`
	}
	return tarFile("manifest.json", `[{"Config":"`+a.configName+`","RepoTags":`+tags+`,"Layers":["`+a.layer+`"]}]`)
}

func writeTar(t *testing.T, path string, files map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	for name, data := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write([]byte(data))
	}
	tw.Close()
	f.Close()
}

func readTar(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		out[h.Name] = string(data)
	}
}
