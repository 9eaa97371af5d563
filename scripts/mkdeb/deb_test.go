package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// These tests build dockmove's agents (CGO_ENABLED=0, as make build
// does), package them, and read the package back with Debian's own tools:
// dpkg-deb for its metadata and files, dpkg to install it into a
// temporary root and remove it again.

// TestMain removes what the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildDir  string
	debPath   string
	agentsDir string
	buildErr  error
)

// testDeb returns the package built from this tree, and the binaries in
// it.
func testDeb(t *testing.T) (deb, bin string) {
	t.Helper()
	requireTool(t, "dpkg-deb")
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mkdeb-test-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		agentsDir = filepath.Join(dir, "bin")
		cmd := exec.Command("go", "build", "-trimpath", "-o", agentsDir+"/", "./cmd/migrate-src", "./cmd/migrate-dst", "./cmd/dockmove-runtime")
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = errors.New("build the agents: " + err.Error() + "\n" + string(out))
			return
		}
		debPath, buildErr = build(options{bin: agentsDir, versionFile: "../../internal/version/version.go", out: filepath.Join(dir, "dist")})
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return debPath, agentsDir
}

func requireTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("DOCKMOVE_STRICT") == "1" {
			t.Fatalf("prerequisite missing in strict mode: %s not in PATH (run: make deps)", name)
		}
		t.Skipf("prerequisite missing: %s not in PATH", name)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, exit.Stderr)
		}
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return string(out)
}

func TestPackageInfo(t *testing.T) {
	deb, _ := testDeb(t)
	version, err := readVersion("../../internal/version/version.go")
	if err != nil {
		t.Fatal(err)
	}
	if got := filepath.Base(deb); got != "dockmove_"+version+"_"+runtime.GOARCH+".deb" {
		t.Errorf("file name %s", got)
	}
	fields := run(t, "dpkg-deb", "--field", deb, "Package", "Version", "Architecture", "Section", "Recommends")
	want := "Package: dockmove\nVersion: " + version + "\nArchitecture: " + runtime.GOARCH + "\nSection: admin\nRecommends: criu, docker.io | docker-ce\n"
	if fields != want {
		t.Errorf("control fields:\n%s\nwant\n%s", fields, want)
	}
	if got := run(t, "dpkg-deb", "--info", deb, "conffiles"); strings.TrimSpace(got) != configPath {
		t.Errorf("conffiles: %q, want %s", got, configPath)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		text := run(t, "dpkg-deb", "--info", deb, script)
		want, _ := scripts.ReadFile("debian/" + script)
		if text != string(want) {
			t.Errorf("%s in the package:\n%s", script, text)
		}
		if out, err := exec.Command("sh", "-n", "-c", text).CombinedOutput(); err != nil {
			t.Errorf("%s: sh -n: %v\n%s", script, err, out)
		}
	}
}

// TestPackageContents: every file where Debian expects it, with its mode
// and owner, and the generated ones as the binaries print them.
func TestPackageContents(t *testing.T) {
	deb, bin := testDeb(t)
	listing := run(t, "dpkg-deb", "--contents", deb)
	for _, p := range []string{"./usr/bin/migrate-src", "./usr/bin/migrate-dst", "./usr/bin/dockmove-runtime", "." + unitPath, "." + configPath,
		"." + pluginPath + " -> /usr/bin/migrate-src", "./usr/share/man/man1/migrate-src.1.gz", "./usr/share/man/man1/migrate-dst.1.gz",
		"./usr/share/bash-completion/completions/migrate-src", "./usr/share/bash-completion/completions/migrate-dst"} {
		if !strings.Contains(listing, " "+p+"\n") {
			t.Errorf("dpkg-deb --contents lacks %s:\n%s", p, listing)
		}
	}
	got := packagedFiles(t, deb)
	for path, want := range map[string]struct {
		mode int64
		data []byte
	}{
		"/usr/bin/migrate-dst":      {0o755, readFile(t, filepath.Join(bin, "migrate-dst"))},
		"/usr/bin/dockmove-runtime": {0o755, readFile(t, filepath.Join(bin, "dockmove-runtime"))},
		unitPath:                    {0o644, generate(t, bin, "migrate-dst", "systemd-unit", "--bin-dir", "/usr/bin")},
		configPath:                  {0o644, generate(t, bin, "migrate-dst", "config")},
		"/usr/share/bash-completion/completions/migrate-src": {0o644, generate(t, bin, "migrate-src", "bash-completion")},
		"/usr/share/man/man1/migrate-dst.1.gz":               {0o644, generate(t, bin, "migrate-dst", "man")},
	} {
		f, ok := got[path]
		if !ok {
			t.Errorf("%s not in the package", path)
			continue
		}
		data := f.data
		if strings.HasSuffix(path, ".gz") {
			data = gunzip(t, data)
		}
		if f.hdr.Mode&0o7777 != want.mode || f.hdr.Uname != "root" || f.hdr.Gname != "root" || !bytes.Equal(data, want.data) {
			t.Errorf("%s: mode %o, owner %s:%s, %d bytes; want mode %o, root:root, %d bytes", path, f.hdr.Mode, f.hdr.Uname, f.hdr.Gname, len(data), want.mode, len(want.data))
		}
	}
	for _, p := range []string{"migrate-src", "migrate-dst"} {
		page := gunzip(t, got["/usr/share/man/man1/"+p+".1.gz"].data)
		if groff, err := exec.LookPath("groff"); err == nil {
			cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
			cmd.Stdin = bytes.NewReader(page)
			if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
				t.Errorf("%s.1: groff: %v\n%s", p, err, out)
			}
		}
		if out, err := exec.Command("bash", "-n", "-c", string(got["/usr/share/bash-completion/completions/"+p].data)).CombinedOutput(); err != nil {
			t.Errorf("%s's completion: bash -n: %v\n%s", p, err, out)
		}
	}
}

type packaged struct {
	hdr  *tar.Header
	data []byte
}

// packagedFiles reads the package's files from dpkg-deb --fsys-tarfile.
func packagedFiles(t *testing.T, deb string) map[string]packaged {
	t.Helper()
	tr := tar.NewReader(strings.NewReader(run(t, "dpkg-deb", "--fsys-tarfile", deb)))
	out := map[string]packaged{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(hdr.Name, ".")] = packaged{hdr: hdr, data: data}
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func generate(t *testing.T, bin, program string, args ...string) []byte {
	t.Helper()
	return []byte(run(t, filepath.Join(bin, program), append([]string{"generate"}, args...)...))
}

func gunzip(t *testing.T, data []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPackageInstallsAndRemoves installs the package with dpkg into a
// temporary root (its maintainer scripts run with DPKG_ROOT, leaving
// this machine's systemd alone), checks the unit with systemd-analyze,
// then removes and purges it: the root is empty again. While migrate-dst
// install's manifest is there, removal is refused.
func TestPackageInstallsAndRemoves(t *testing.T) {
	deb, _ := testDeb(t)
	requireTool(t, "dpkg")
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644)
	dpkg := func(args ...string) (string, error) {
		out, err := exec.Command("dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--force-not-root", "--log=/dev/null"}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := dpkg("-i", deb); err != nil || !strings.Contains(out, "migrate-dst install") {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	if st, err := os.Lstat(filepath.Join(root, pluginPath)); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the plugin: %v, %v", st, err)
	}
	verifyUnit(t, root)

	manifest := filepath.Join(root, "var/lib/dockmove/install.json")
	os.MkdirAll(filepath.Dir(manifest), 0o755)
	os.WriteFile(manifest, []byte("{}"), 0o600)
	if out, err := dpkg("-r", "dockmove"); err == nil || !strings.Contains(out, "run 'migrate-dst uninstall' first") {
		t.Fatalf("dpkg -r with install's changes in place: %v\n%s", err, out)
	}
	os.RemoveAll(filepath.Join(root, "var/lib/dockmove"))

	if out, err := dpkg("-r", "dockmove"); err != nil {
		t.Fatalf("dpkg -r: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(root, configPath)); err != nil {
		t.Errorf("the conffile after remove (kept until purge): %v", err)
	}
	if out, err := dpkg("--purge", "dockmove"); err != nil {
		t.Fatalf("dpkg --purge: %v\n%s", err, out)
	}
	var left []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if rel, _ := filepath.Rel(root, p); !d.IsDir() && !strings.HasPrefix(rel, "var/lib/dpkg") {
			left = append(left, rel)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("left after purge: %v", left)
	}
}

// verifyUnit runs systemd-analyze verify on the installed unit, its
// ExecStart pointed into root (verify checks that the program is there).
func verifyUnit(t *testing.T, root string) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not in PATH: the unit is not verified")
		return
	}
	unit := readFile(t, filepath.Join(root, unitPath))
	moved := bytes.ReplaceAll(unit, []byte("ExecStart="+binDir+"/"), []byte("ExecStart="+filepath.Join(root, binDir)+"/"))
	if bytes.Equal(moved, unit) {
		t.Fatalf("the unit starts nothing from %s:\n%s", binDir, unit)
	}
	copyPath := filepath.Join(t.TempDir(), filepath.Base(unitPath))
	os.WriteFile(copyPath, moved, 0o644)
	// --man=no: the man page it names is in root, not where man looks.
	if out, err := exec.Command(analyze, "verify", "--man=no", copyPath).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
