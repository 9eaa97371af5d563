package install

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
)

// manifestVersion is the manifest format written here.
const manifestVersion = 1

// fileKind says how Uninstall treats a file that changed after install
// wrote it.
type fileKind string

const (
	// kindDaemonJSON: only dockmove's runtime entry is taken out.
	kindDaemonJSON fileKind = "daemon.json"
	// kindConfig, kindUnit: left as they are.
	kindConfig fileKind = "config"
	kindUnit   fileKind = "unit"
)

var fileKinds = []fileKind{kindDaemonJSON, kindConfig, kindUnit}

// manifest is the record of what install changed: each file with what it
// held before install first changed it, and the directories it made. It
// is saved before each change, so that Uninstall can undo an install
// that stopped half way.
type manifest struct {
	path    string
	exists  bool
	Version int `json:"version"`
	// Files install wrote, in order.
	Files []*fileRecord `json:"files"`
	// Dirs install made, parents first.
	Dirs []string `json:"dirs,omitempty"`
}

// fileRecord is one file install wrote.
type fileRecord struct {
	Path string   `json:"path"`
	Kind fileKind `json:"kind"`
	// Existed says whether there was a file before install; Previous,
	// PreviousMode, UID and GID are what it was.
	Existed      bool        `json:"existed"`
	Previous     []byte      `json:"previous,omitempty"`
	PreviousMode fs.FileMode `json:"previous_mode,omitempty"`
	UID          int         `json:"uid"`
	GID          int         `json:"gid"`
	// Written is the SHA-256 of what install last wrote: a file that no
	// longer matches was changed by someone else since.
	Written string `json:"written_sha256"`
}

func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// loadManifest reads the manifest at path; none yet is an empty one.
func loadManifest(path string) (*manifest, error) {
	m := &manifest{path: path, Version: manifestVersion}
	st, err := readFile(path)
	if err != nil || !st.exists {
		return m, err
	}
	if err := json.Unmarshal(st.data, m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrManifest, path, err)
	}
	if m.Version != manifestVersion {
		return nil, fmt.Errorf("%w: %s: version %d, this migrate-dst reads %d", ErrManifest, path, m.Version, manifestVersion)
	}
	for _, f := range m.Files {
		if !slices.Contains(fileKinds, f.Kind) || !filepath.IsAbs(f.Path) {
			return nil, fmt.Errorf("%w: %s: file %q of kind %q", ErrManifest, path, f.Path, f.Kind)
		}
	}
	for _, d := range m.Dirs {
		if !filepath.IsAbs(d) {
			return nil, fmt.Errorf("%w: %s: directory %q", ErrManifest, path, d)
		}
	}
	m.exists = true
	return m, nil
}

// save writes the manifest (mode 0600: it holds daemon.json as it was),
// making its directory first if need be.
func (m *manifest) save() error {
	dir, err := openDir(filepath.Dir(m.path), 0o755, func(d string) error {
		m.Dirs = append(m.Dirs, d)
		return nil
	})
	if err != nil {
		return err
	}
	dir.Close()
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFile(m.path, append(data, '\n'), fileMeta{perm: 0o600, uid: -1, gid: -1}, 0o755, nil); err != nil {
		return err
	}
	m.exists = true
	return nil
}

// made records a directory install is about to make, before it does.
func (m *manifest) made(dir string) error {
	m.Dirs = append(m.Dirs, dir)
	return m.save()
}

func (m *manifest) record(path string) *fileRecord {
	for _, f := range m.Files {
		if f.Path == path {
			return f
		}
	}
	return nil
}

// step is one file install wants to hold data.
type step struct {
	path string
	kind fileKind
	data []byte
	perm fs.FileMode // for a new file; an existing one keeps its mode
}

// put makes s.path hold s.data, recording what it held before the first
// time install changes it.
func (m *manifest) put(s step) (Change, error) {
	cur, err := readFile(s.path)
	if err != nil {
		return Change{}, err
	}
	if cur.exists && bytes.Equal(cur.data, s.data) {
		return Change{Path: s.path, Action: Unchanged}, nil
	}
	rec := m.record(s.path)
	if rec == nil {
		rec = &fileRecord{Path: s.path, Kind: s.kind, Existed: cur.exists, Previous: cur.data, PreviousMode: cur.mode, UID: cur.uid, GID: cur.gid}
		m.Files = append(m.Files, rec)
	}
	rec.Written = digest(s.data)
	if err := m.save(); err != nil {
		return Change{}, err
	}
	meta, action := fileMeta{perm: s.perm, uid: -1, gid: -1}, Created
	if cur.exists {
		meta, action = fileMeta{perm: cur.mode, uid: cur.uid, gid: cur.gid}, Updated
	}
	if err := writeFile(s.path, s.data, meta, 0o755, m.made); err != nil {
		return Change{}, err
	}
	return Change{Path: s.path, Action: action}, nil
}
