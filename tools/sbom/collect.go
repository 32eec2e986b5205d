package sbom

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/petrel-os/petrel/tools/project"
	"github.com/petrel-os/petrel/tools/sparse"
)

// queryFormat is the rpm query of Packages: one tab-separated line each.
const queryFormat = `%{NAME}\t%{EPOCHNUM}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{LICENSE}\t%{URL}\t%{SOURCERPM}\t%{SUMMARY}\n`

// rpmCmd runs rpm on the database dbpath of the tree root.
func rpmCmd(ctx context.Context, root, dbpath string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "rpm", append([]string{"--root", root, "--dbpath", dbpath}, args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	return cmd
}

// Packages lists the RPMs installed in root (database dbpath), with the
// SHA-256 of their files among rpmFiles and the external files of the
// project's package each was built from.
func Packages(ctx context.Context, root, dbpath string, rpmFiles []string, p *project.Project) ([]Package, error) {
	out, err := rpmCmd(ctx, root, dbpath, "-qa", "--queryformat", queryFormat).Output()
	if err != nil {
		return nil, fmt.Errorf("query installed packages in %s: %w", root, err)
	}
	pkgs, err := ParsePackages(out)
	if err != nil {
		return nil, err
	}
	files := map[string]string{}
	for _, f := range rpmFiles {
		files[filepath.Base(f)] = f
	}
	prefix := p.Manifest.OS.Name + "-"
	for i := range pkgs {
		pk := &pkgs[i]
		pk.RPMFile = fmt.Sprintf("%s-%s-%s.%s.rpm", pk.Name, pk.Version, pk.Release, pk.Arch)
		if path, ok := files[pk.RPMFile]; ok {
			if pk.RPMSHA256, _, err = sparse.SHA256(path); err != nil {
				return nil, err
			}
		}
		src, ok := strings.CutPrefix(SourceName(pk.SourceRPM), prefix)
		if !ok {
			continue
		}
		if pp, ok := p.Packages[src]; ok {
			for _, e := range pp.ExternalFiles {
				s := Source{File: e.Path, URL: e.URL, SHA512: e.SHA512}
				s.DebianPackage, s.DebianVersion, _ = strings.Cut(e.Debian, "=")
				if s.File == "" && e.URL != "" {
					s.File = e.URL[strings.LastIndex(e.URL, "/")+1:]
				}
				pk.Sources = append(pk.Sources, s)
			}
		}
	}
	return pkgs, nil
}

// ParsePackages parses the output of the rpm query of queryFormat.
func ParsePackages(out []byte) ([]Package, error) {
	var pkgs []Package
	for n, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 9 {
			return nil, fmt.Errorf("parse rpm query line %d %q: want 9 tab-separated fields, got %d", n+1, line, len(f))
		}
		for i, v := range f {
			if v == "(none)" {
				f[i] = ""
			}
		}
		if f[0] == "" || f[2] == "" {
			return nil, fmt.Errorf("parse rpm query line %d %q: no name or version", n+1, line)
		}
		pkgs = append(pkgs, Package{Name: f[0], Epoch: f[1], Version: f[2], Release: f[3], Arch: f[4], License: f[5], URL: f[6], SourceRPM: f[7], Summary: f[8]})
	}
	return pkgs, nil
}

// SourceName returns the package name of a source RPM file name
// (name-version-release.src.rpm), "" if it is not one.
func SourceName(srpm string) string {
	base, ok := strings.CutSuffix(srpm, ".src.rpm")
	if !ok {
		return ""
	}
	i := strings.LastIndex(base, "-")
	if i <= 0 {
		return ""
	}
	j := strings.LastIndex(base[:i], "-")
	if j <= 0 {
		return ""
	}
	return base[:j]
}

// elfMagic starts every ELF file.
var elfMagic = []byte("\x7fELF")

// Binaries finds the Go executables under root (regular executable ELF
// files with Go build info) and the installed RPM that owns each.
func Binaries(ctx context.Context, root, dbpath string) ([]Binary, error) {
	var bins []Binary
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.Type().IsRegular() {
			return nil
		}
		info, err := e.Info()
		if err != nil || info.Mode()&0o111 == 0 || info.Size() < 64 {
			return err
		}
		if !isELF(path) {
			return nil
		}
		bi, err := buildinfo.ReadFile(path)
		if err != nil {
			return nil // an ELF file that Go did not build
		}
		rel, _ := filepath.Rel(root, path)
		b := Binary{Path: "/" + filepath.ToSlash(rel), GoVersion: bi.GoVersion, Main: bi.Path,
			MainModule: Module{Path: bi.Main.Path, Version: bi.Main.Version, Sum: bi.Main.Sum}}
		for _, d := range bi.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			b.Modules = append(b.Modules, Module{Path: d.Path, Version: d.Version, Sum: d.Sum})
		}
		bins = append(bins, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find Go binaries in %s: %w", root, err)
	}
	if len(bins) == 0 {
		return nil, nil
	}
	args := []string{"-qf", "--queryformat", `%{NAME}\n`}
	for _, b := range bins {
		args = append(args, b.Path)
	}
	out, err := rpmCmd(ctx, root, dbpath, args...).Output()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return nil, fmt.Errorf("find the packages of the Go binaries: %w", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	for i := range bins {
		if i < len(lines) && !strings.Contains(lines[i], " ") {
			bins[i].Package = lines[i]
		}
	}
	return bins, nil
}

func isELF(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var magic [4]byte
	_, err = io.ReadFull(f, magic[:])
	return err == nil && bytes.Equal(magic[:], elfMagic)
}

// Artifacts hashes the files of dir whose names keep accepts, as many at
// a time as there are cores.
func Artifacts(dir string, keep func(name string) bool) ([]Artifact, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list artifacts: %w", err)
	}
	var out []Artifact
	for _, e := range entries {
		if e.Type().IsRegular() && keep(e.Name()) {
			out = append(out, Artifact{Name: e.Name()})
		}
	}
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range out {
		g.Go(func() (err error) {
			out[i].SHA256, out[i].Size, err = sparse.SHA256(filepath.Join(dir, out[i].Name))
			return err
		})
	}
	return out, g.Wait()
}
