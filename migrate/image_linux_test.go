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
