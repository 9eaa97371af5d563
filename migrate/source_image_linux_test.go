package migrate

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
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
	writeTar(t, src, map[string]string{
		"manifest.json":  `[{"Config":"blobs/sha256/c","RepoTags":["debian:12","evil:latest"],"Layers":["blobs/sha256/l"]}]`,
		"repositories":   `{"debian":{"12":"c"}}`,
		"index.json":     `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:m","size":1,"annotations":{"io.containerd.image.name":"docker.io/library/debian:12","org.opencontainers.image.ref.name":"12","keep":"me"}}]}`,
		"blobs/sha256/l": "layer bytes",
	})
	if err := untagArchive(src, dst); err != nil {
		t.Fatal(err)
	}
	got := readTar(t, dst)
	if _, ok := got["repositories"]; ok {
		t.Error("the repositories file survived")
	}
	if strings.Contains(got["manifest.json"], "RepoTags") || !strings.Contains(got["manifest.json"], "blobs/sha256/l") {
		t.Errorf("manifest.json: %s", got["manifest.json"])
	}
	if strings.Contains(got["index.json"], "debian") || strings.Contains(got["index.json"], "ref.name") || !strings.Contains(got["index.json"], `"keep":"me"`) {
		t.Errorf("index.json: %s", got["index.json"])
	}
	if got["blobs/sha256/l"] != "layer bytes" {
		t.Errorf("layer: %q", got["blobs/sha256/l"])
	}

	writeTar(t, src, map[string]string{"manifest.json": `[{"Config":"a"},{"Config":"b"}]`})
	if err := untagArchive(src, dst); err == nil {
		t.Error("an archive of two images was accepted")
	}
	writeTar(t, src, map[string]string{"blobs/sha256/l": "x"})
	if err := untagArchive(src, dst); err == nil {
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
		if err := untagArchive(src, dst); err == nil || !strings.Contains(err.Error(), "not a plain relative name") {
			t.Errorf("an entry named %q: %v", name, err)
		}
	}
	writeTar(t, src, map[string]string{
		"manifest.json": `[{"Config":"blobs/sha256/c"}]`,
		"index.json":    `{"schemaVersion":2,"manifests":[{"digest":"sha256:a"},{"digest":"sha256:b","annotations":{"io.containerd.image.name":"docker.io/library/debian:12"}}]}`,
	})
	if err := untagArchive(src, dst); err == nil {
		t.Error("an index of two images was accepted")
	}
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
