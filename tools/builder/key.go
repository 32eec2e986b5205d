package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/petrel-os/petrel/tools/fetch"
	"github.com/petrel-os/petrel/tools/project"
)

// keyVersion changes whenever the way a package is built changes in a way
// that its inputs do not show; it invalidates every cached package.
const keyVersion = "petrel-package-key-v1"

// keyHasher frames every input with its kind, name and length so that no
// two different input sets hash alike.
type keyHasher struct{ h hash.Hash }

func newKeyHasher() *keyHasher { return &keyHasher{h: sha256.New()} }

func (k *keyHasher) add(kind, name string, data []byte) {
	fmt.Fprintf(k.h, "%s\x00%s\x00%d\x00", kind, name, len(data))
	k.h.Write(data)
}

func (k *keyHasher) addString(kind, name, value string) { k.add(kind, name, []byte(value)) }

// addFile hashes the file at path, named name in the key.
func (k *keyHasher) addFile(kind, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read input %q: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat input %q: %w", path, err)
	}
	fmt.Fprintf(k.h, "%s\x00%s\x00%o\x00%d\x00", kind, name, st.Mode().Perm()&0o111, st.Size())
	if _, err := io.Copy(k.h, f); err != nil {
		return fmt.Errorf("read input %q: %w", path, err)
	}
	return nil
}

// addTree hashes every regular file and symlink under root/rel, in sorted
// order, named by its path relative to root.
func (k *keyHasher) addTree(kind, root, rel string) error {
	dir := filepath.Join(root, rel)
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %q: %w", dir, err)
		}
		name, _ := filepath.Rel(root, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("read link %q: %w", p, err)
			}
			k.addString(kind+"-symlink", filepath.ToSlash(name), target)
		case d.Type().IsRegular():
			return k.addFile(kind, filepath.ToSlash(name), p)
		}
		return nil
	})
}

func (k *keyHasher) sum() string { return hex.EncodeToString(k.h.Sum(nil)) }

// inputs of one package build, resolved once per Build.
type inputs struct {
	pkg *project.Package
	// epoch is SOURCE_DATE_EPOCH.
	epoch int64
	// externals maps each external file to its name in SOURCES ("" for a
	// Debian package without path, named after download).
	externals []external
}

type external struct {
	file project.ExternalFile
	name string
}

// computeKey returns the cache key of pkg given the keys of its
// dependencies.
func (b *Builder) computeKey(in *inputs, deps map[string]string) (string, error) {
	pkg := in.pkg
	k := newKeyHasher()
	k.addString("version", "", keyVersion)
	k.addString("arch", "", b.Config.Arch)
	k.addString("epoch", "", strconv.FormatInt(in.epoch, 10))
	k.add("macros", "identity", b.identity)
	k.add("macros", "policy", policyMacros)
	for _, t := range b.Project.Manifest.SDK.Tools {
		k.addString("sdk-tool", t.Command, t.Package+" "+t.MinVersion+" "+strings.Join(t.VersionArgs, " "))
	}
	if err := k.addFile("spec", "", pkg.SpecPath); err != nil {
		return "", err
	}
	if pkg.ManifestPath != "" {
		if err := k.addFile("manifest", "", pkg.ManifestPath); err != nil {
			return "", err
		}
	}
	for _, f := range pkg.LocalFiles {
		if err := k.addFile("local", filepath.ToSlash(f), filepath.Join(pkg.Dir, f)); err != nil {
			return "", err
		}
	}
	for _, e := range in.externals {
		k.addString("external", e.name+" "+e.file.Debian, strings.ToLower(e.file.SHA512))
	}
	root := b.Project.Root
	for _, g := range pkg.SourceGroups {
		if err := k.addTree("source-group", root, filepath.Join("sources", g)); err != nil {
			return "", err
		}
	}
	if pkg.GoModule {
		// Its go.mod and go.sum are local files, hashed above.
		k.addString("go-version", "", b.goVersion)
	}
	if len(pkg.GoCommands) > 0 || len(pkg.SourceGroups) > 0 {
		k.addString("go-version", "", b.goVersion)
		for _, f := range []string{"go.mod", "go.sum"} {
			if err := k.addFile("go", f, filepath.Join(root, f)); err != nil {
				return "", err
			}
		}
	}
	for _, c := range pkg.GoCommands {
		if err := k.addTree("go-command", root, filepath.Join("cmd", c)); err != nil {
			return "", err
		}
	}
	for _, d := range slices.Sorted(maps.Keys(deps)) {
		k.addString("dependency", d, deps[d])
	}
	return k.sum(), nil
}

// externalsOf resolves the SOURCES names of pkg's external files.
func externalsOf(pkg *project.Package) ([]external, error) {
	var out []external
	for _, f := range pkg.ExternalFiles {
		name, err := fetch.Name(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pkg.ManifestPath, err)
		}
		out = append(out, external{file: f, name: name})
	}
	return out, nil
}
