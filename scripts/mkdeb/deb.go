package main

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"embed"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// Where the package puts things.
const (
	binDir     = "/usr/bin"
	pluginPath = "/usr/libexec/docker/cli-plugins/docker-migrate"
	unitPath   = "/usr/lib/systemd/system/dockmove-migrate-dst.service"
	configPath = "/etc/dockmove/migrate-dst.conf"
)

// programs are the binaries packaged; the ones with a man page and a
// completion are those people type.
var programs = []struct {
	name  string
	typed bool
}{{"migrate-src", true}, {"migrate-dst", true}, {"dockmove-runtime", false}}

// scripts are the maintainer scripts.
//
//go:embed debian
var scripts embed.FS

// options are mkdeb's command line.
type options struct {
	bin, versionFile, out string
}

// build writes the package into opts.out and returns its path.
func build(opts options) (string, error) {
	version, err := readVersion(opts.versionFile)
	if err != nil {
		return "", err
	}
	for _, p := range programs {
		if err := checkStatic(filepath.Join(opts.bin, p.name)); err != nil {
			return "", err
		}
	}
	stage, err := os.MkdirTemp("", "mkdeb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage)
	contents, err := generated(opts.bin, stage)
	if err != nil {
		return "", err
	}
	info, err := packageInfo(version, opts.bin, stage, contents)
	if err != nil {
		return "", err
	}
	return write(info, opts.out)
}

// readVersion returns the string constant Version declared in file.
func readVersion(file string) (string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		return "", err
	}
	if obj := f.Scope.Lookup("Version"); obj != nil && obj.Kind == ast.Con {
		if spec, ok := obj.Decl.(*ast.ValueSpec); ok && len(spec.Values) == 1 {
			if lit, ok := spec.Values[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				return strconv.Unquote(lit.Value)
			}
		}
	}
	return "", fmt.Errorf("%s declares no string constant Version", file)
}

// checkStatic refuses a binary that needs a dynamic loader: the package
// holds CGO_ENABLED=0 builds that run on any Debian.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked: build it with CGO_ENABLED=0 (make build)", path)
		}
	}
	return nil
}

// generated writes into stage what the binaries print about themselves,
// and returns the package contents made of it.
func generated(bin, stage string) (files.Contents, error) {
	dst := filepath.Join(bin, "migrate-dst")
	var out files.Contents
	add := func(name, target string, typ string, mode os.FileMode, args ...string) error {
		data, err := exec.Command(args[0], args[1:]...).Output()
		if err != nil {
			return fmt.Errorf("%v: %w", args, exitDetail(err))
		}
		if filepath.Ext(name) == ".gz" {
			if data, err = gzipped(data); err != nil {
				return err
			}
		}
		src := filepath.Join(stage, name)
		if err := os.WriteFile(src, data, 0o644); err != nil {
			return err
		}
		out = append(out, &files.Content{Source: src, Destination: target, Type: typ, FileInfo: &files.ContentFileInfo{Mode: mode}})
		return nil
	}
	if err := add("unit", unitPath, files.TypeFile, 0o644, dst, "generate", "systemd-unit", "--bin-dir", binDir, "--config", configPath); err != nil {
		return nil, err
	}
	if err := add("config", configPath, files.TypeConfigNoReplace, 0o644, dst, "generate", "config"); err != nil {
		return nil, err
	}
	for _, p := range programs {
		if !p.typed {
			continue
		}
		exe := filepath.Join(bin, p.name)
		if err := add(p.name+".1.gz", "/usr/share/man/man1/"+p.name+".1.gz", files.TypeFile, 0o644, exe, "generate", "man"); err != nil {
			return nil, err
		}
		if err := add(p.name+".bash", "/usr/share/bash-completion/completions/"+p.name, files.TypeFile, 0o644, exe, "generate", "bash-completion"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// gzipped compresses a man page as dh_compress does: best, with no name
// or time in the header.
func gzipped(data []byte) ([]byte, error) {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	err = zw.Close()
	return b.Bytes(), err
}

func exitDetail(err error) error {
	var exit *exec.ExitError
	if errors.As(err, &exit) && len(exit.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, bytes.TrimSpace(exit.Stderr))
	}
	return err
}

// packageInfo describes the package: its metadata, the binaries and the
// plugin, the generated files and the maintainer scripts.
func packageInfo(version, bin, stage string, contents files.Contents) (*nfpm.Info, error) {
	for _, p := range programs {
		contents = append(contents, &files.Content{Source: filepath.Join(bin, p.name), Destination: filepath.Join(binDir, p.name),
			FileInfo: &files.ContentFileInfo{Mode: 0o755}})
	}
	contents = append(contents,
		&files.Content{Source: filepath.Join(binDir, "migrate-src"), Destination: pluginPath, Type: files.TypeSymlink},
		&files.Content{Destination: "/etc/dockmove", Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}})
	var sc nfpm.Scripts
	for _, s := range []struct {
		name string
		dst  *string
	}{{"postinst", &sc.PostInstall}, {"prerm", &sc.PreRemove}, {"postrm", &sc.PostRemove}} {
		data, err := scripts.ReadFile("debian/" + s.name)
		if err != nil {
			return nil, err
		}
		*s.dst = filepath.Join(stage, s.name)
		if err := os.WriteFile(*s.dst, data, 0o755); err != nil {
			return nil, err
		}
	}
	info := &nfpm.Info{
		Name:        "dockmove",
		Arch:        runtime.GOARCH,
		Platform:    "linux",
		Version:     version,
		Section:     "admin",
		Priority:    "optional",
		Maintainer:  "dockmove developers <dockmove@localhost>",
		Description: "live migration of Docker containers between hosts\nmigrate-src moves a running container, with its memory, processes, files\nand TCP connections, to a host running migrate-dst, using CRIU. This\npackage holds both agents, the restore runtime Docker runs, the\n`docker migrate` CLI plugin and migrate-dst's systemd unit (run\n`migrate-dst install` to make a host a destination).",
		MTime:       mtime(),
		Overridables: nfpm.Overridables{
			Recommends: []string{"criu", "docker.io | docker-ce"},
			Contents:   contents,
			Scripts:    sc,
		},
	}
	info = nfpm.WithDefaults(info)
	return info, nfpm.Validate(info)
}

// mtime is the files' time: SOURCE_DATE_EPOCH's, for a reproducible
// package, or now.
func mtime() time.Time {
	if s, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		return time.Unix(s, 0).UTC()
	}
	return time.Now().UTC().Truncate(time.Second)
}

// write writes the package into dir under Debian's file name.
func write(info *nfpm.Info, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, deb.Default.ConventionalFileName(info))
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return "", err
	}
	if err := deb.Default.Package(info, f); err != nil {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("package: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return path, os.Rename(tmp, path)
}
