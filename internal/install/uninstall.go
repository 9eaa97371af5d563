package install

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/dockmove/dockmove/internal/restoreruntime"
)

// Uninstall undoes what Install recorded in the manifest: each file
// install wrote gets back what it held before (or is removed, if it did
// not exist), the directories install made are removed if empty, then the
// manifest. A file someone changed since is left as it is, except
// daemon.json, from which only the runtime's entry is taken out. It
// refuses while the service is enabled or, when it would unregister the
// runtime, while inUse (nil: not asked) names containers created with it.
func Uninstall(cfg Config, inUse func() ([]string, error)) (Result, error) {
	if err := absolute(map[string]string{"manifest": cfg.Manifest, "unit dir": cfg.UnitDir, "dockerd pidfile": cfg.PIDFile}); err != nil {
		return Result{}, err
	}
	m, err := loadManifest(cfg.Manifest)
	if err != nil || !m.exists {
		return Result{NothingInstalled: err == nil}, err
	}
	if on, err := Enabled(cfg.UnitDir); err != nil || on {
		return Result{}, fmt.Errorf("%w: run \"systemctl disable --now %s\" first (or uninstall --now)", ErrServiceEnabled, UnitName)
	}
	if err := checkRuntimeUnused(m, inUse); err != nil {
		return Result{}, err
	}
	var res Result
	daemonChanged := false
	for len(m.Files) > 0 {
		rec := m.Files[len(m.Files)-1]
		ch, err := undo(rec)
		if err != nil {
			return res, err
		}
		res.Changes = append(res.Changes, ch)
		daemonChanged = daemonChanged || (rec.Kind == kindDaemonJSON && ch.Action != Unchanged && ch.Action != Left)
		m.Files = m.Files[:len(m.Files)-1]
		if err := m.save(); err != nil {
			return res, err
		}
	}
	if err := removeFile(m.path); err != nil {
		return res, err
	}
	res.add(m.path, Removed, "")
	for i := len(m.Dirs) - 1; i >= 0; i-- {
		if empty, err := removeDir(m.Dirs[i]); err != nil {
			return res, err
		} else if empty {
			res.add(m.Dirs[i], Removed, "")
		} else {
			res.add(m.Dirs[i], Left, "not empty: holds files install did not write")
		}
	}
	if daemonChanged {
		return res, res.reloadDockerd(cfg.PIDFile)
	}
	return res, nil
}

// undo puts back what rec's file held before install, unless it changed
// since.
func undo(rec *fileRecord) (Change, error) {
	cur, err := readFile(rec.Path)
	if err != nil {
		return Change{}, err
	}
	ch := Change{Path: rec.Path}
	switch {
	case !cur.exists && !rec.Existed:
		ch.Action, ch.Note = Unchanged, "removed already"
	case !cur.exists:
		ch.Action, ch.Note = Left, "removed by someone since install: not put back"
	case digest(cur.data) == rec.Written && !rec.Existed:
		ch.Action, err = Removed, removeFile(rec.Path)
	case digest(cur.data) == rec.Written:
		ch.Action = Restored
		err = writeFile(rec.Path, rec.Previous, fileMeta{perm: rec.PreviousMode, uid: rec.UID, gid: rec.GID}, 0o755, nil)
	case rec.Existed && bytes.Equal(cur.data, rec.Previous):
		ch.Action = Unchanged
	case rec.Kind == kindDaemonJSON:
		return undoRuntimeEntry(rec.Path, cur)
	default:
		ch.Action, ch.Note = Left, "changed by someone since install: left as it is"
	}
	return ch, err
}

// undoRuntimeEntry takes the runtime's entry out of a daemon.json that
// changed since install wrote it, leaving the rest as it now is.
func undoRuntimeEntry(path string, cur fileState) (Change, error) {
	data, changed, err := restoreruntime.Unregister(cur.data)
	if err != nil {
		return Change{}, fmt.Errorf("install: %s: %w", path, err)
	}
	if !changed {
		return Change{Path: path, Action: Left, Note: "changed by someone since install, and holds no dockmove runtime: left as it is"}, nil
	}
	err = writeFile(path, data, fileMeta{perm: cur.mode, uid: cur.uid, gid: cur.gid}, 0o755, nil)
	return Change{Path: path, Action: Updated, Note: "changed by someone since install: only dockmove's runtime entry was removed, the rest left as it is"}, err
}

// checkRuntimeUnused refuses while containers use the runtime, if install
// registered it.
func checkRuntimeUnused(m *manifest, inUse func() ([]string, error)) error {
	if inUse == nil || !slices.ContainsFunc(m.Files, func(f *fileRecord) bool { return f.Kind == kindDaemonJSON }) {
		return nil
	}
	names, err := inUse()
	if err != nil {
		return fmt.Errorf("install: which containers use the restore runtime: %w", err)
	}
	if len(names) > 0 {
		return fmt.Errorf("%w: %s (remove them, or move them away, first)", ErrRuntimeInUse, strings.Join(names, ", "))
	}
	return nil
}
