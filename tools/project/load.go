package project

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/petrel-os/petrel/tools/spec"
)

// Load reads and validates the project rooted at root: Twoliter.toml,
// Makefile.toml, packages/*/, kits/*/kit.toml and variants/*/variant.toml.
// It reports every problem at once, joined, each naming its file and field
// or line; errors.Is(err, ErrInvalidInput) holds for them.
func Load(ctx context.Context, root string) (*Project, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("resolve project root %q: %w", root, err)
	}
	l := newLoader(abs)
	p := l.p
	l.readManifests()
	macros := p.Macros()

	dirs, err := l.subdirs("packages")
	if err != nil {
		return nil, err
	}
	for _, name := range dirs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("load packages: %w", err)
		}
		if pkg := l.loadPackage(name, macros); pkg != nil {
			p.Packages[name] = pkg
		}
	}
	if dirs, err = l.subdirs("kits"); err != nil {
		return nil, err
	}
	for _, name := range dirs {
		if k := l.loadKit(name); k != nil {
			p.Kits[name] = k
		}
	}
	if dirs, err = l.subdirs("variants"); err != nil {
		return nil, err
	}
	for _, name := range dirs {
		if v := l.loadVariant(name); v != nil {
			p.Variants[name] = v
		}
	}
	l.crossCheck()
	if err := l.probs.err(); err != nil {
		return nil, err
	}
	return p, nil
}

func newLoader(root string) *loader {
	return &loader{p: &Project{
		Root:     root,
		Packages: map[string]*Package{},
		Kits:     map[string]*Kit{},
		Variants: map[string]*Variant{},
	}}
}

type loader struct {
	p     *Project
	probs problems
}

// read reads a file relative to the root; a missing file is a problem.
func (l *loader) read(rel string) ([]byte, bool) {
	data, err := os.ReadFile(filepath.Join(l.p.Root, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		l.probs.addf(rel, "file does not exist")
		return nil, false
	}
	if err != nil {
		l.probs.add(fmt.Errorf("read %s: %w", rel, err))
		return nil, false
	}
	return data, true
}

// subdirs lists the directories under rel, sorted. A missing rel is empty.
func (l *loader) subdirs(rel string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(l.p.Root, rel))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", rel, err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// decode decodes TOML data into v and reports syntax errors and unknown
// keys, each naming file. ok is false when the data is not valid TOML for v.
func decode(file string, data []byte, v any) (errs []error, ok bool) {
	md, err := toml.Decode(string(data), v)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			msg := pe.Message
			if pe.LastKey != "" {
				msg = fmt.Sprintf("%s: %s", pe.LastKey, msg)
			}
			return []error{invalid(fmt.Errorf("%s:%d: %s", file, pe.Position.Line, msg))}, false
		}
		return []error{invalid(fmt.Errorf("%s: %w", file, err))}, false
	}
	for _, k := range md.Undecoded() {
		errs = append(errs, invalid(errorf(file, "%s: unknown key", k.String())))
	}
	return errs, true
}

// DecodeTOML decodes a TOML file of another tool (data read from file)
// into v the way the project's own files are decoded: syntax errors with
// their line, every unknown key named; each error names file and
// errors.Is(err, ErrInvalidInput) holds. ok is false when v is unusable.
func DecodeTOML(file string, data []byte, v any) (errs []error, ok bool) {
	return decode(file, data, v)
}

func errorf(file, format string, args ...any) error {
	return fmt.Errorf("%s: %s", file, fmt.Sprintf(format, args...))
}

// packageManifest is the content of package.toml.
type packageManifest struct {
	SourceGroups  []string       `toml:"source-groups"`
	GoCommands    []string       `toml:"go-commands"`
	ExternalFiles []ExternalFile `toml:"external-files"`
	GoModule      bool           `toml:"go-module"`
}

func (l *loader) loadPackage(name string, macros map[string]string) *Package {
	dirRel := path.Join("packages", name)
	dir := filepath.Join(l.p.Root, "packages", name)
	pkg := &Package{
		Name:         name,
		Dir:          dir,
		SpecPath:     filepath.Join(dir, name+".spec"),
		ManifestPath: filepath.Join(dir, "package.toml"),
	}
	if !validName(name) {
		l.probs.addf(dirRel, "invalid package name %q: expected lower-case letters, digits, '.', '+' and '-'", name)
	}
	manRel := path.Join(dirRel, "package.toml")
	manifestOK := false
	if data, ok := l.read(manRel); ok {
		var m packageManifest
		errs, ok := decode(manRel, data, &m)
		l.probs.errs = append(l.probs.errs, errs...)
		pkg.SourceGroups, pkg.GoCommands, pkg.ExternalFiles = m.SourceGroups, m.GoCommands, m.ExternalFiles
		pkg.GoModule = m.GoModule
		if ok {
			l.checkPackageManifest(manRel, pkg)
		}
		manifestOK = ok
	}
	files, err := localFiles(dir)
	if err != nil {
		l.probs.add(fmt.Errorf("list files of %s: %w", dirRel, err))
	}
	for _, f := range files {
		if f != name+".spec" && f != "package.toml" {
			pkg.LocalFiles = append(pkg.LocalFiles, f)
		}
	}
	if pkg.GoModule {
		for _, f := range []string{"go.mod", "go.sum"} {
			if !slices.Contains(pkg.LocalFiles, f) {
				l.probs.addf(manRel, "go-module: packages/%s/%s is missing: a go-module package holds its own go.mod and go.sum", name, f)
			}
		}
	}
	specRel := path.Join(dirRel, name+".spec")
	data, ok := l.read(specRel)
	if !ok {
		return pkg
	}
	s, err := spec.Parse(specRel, data, macros)
	if err != nil {
		l.probs.add(err)
		return pkg
	}
	pkg.Spec = s
	l.checkSpec(pkg, macros, manifestOK)
	return pkg
}

// localFiles lists the regular files under dir, relative and slash-separated,
// sorted.
func localFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

func (l *loader) loadKit(name string) *Kit {
	rel := path.Join("kits", name, "kit.toml")
	data, ok := l.read(rel)
	if !ok {
		return nil
	}
	k := &Kit{Dir: filepath.Join(l.p.Root, "kits", name), Path: filepath.Join(l.p.Root, "kits", name, "kit.toml")}
	errs, ok := decode(rel, data, k)
	l.probs.errs = append(l.probs.errs, errs...)
	if !ok {
		return k
	}
	switch {
	case k.Name == "":
		k.Name = name
	case k.Name != name:
		l.probs.addf(rel, "name: %q does not match the directory name %q", k.Name, name)
	}
	if !semver.MatchString(k.Version) {
		l.probs.addf(rel, "version: expected a semantic version such as \"1.2.3\", got %q", k.Version)
	}
	for i, pkg := range k.Packages {
		if _, ok := l.p.Packages[pkg]; !ok {
			l.probs.addf(rel, "packages[%d]: unknown package %q (no packages/%s/)", i, pkg, pkg)
		}
	}
	if dup := firstDuplicate(k.Packages); dup != "" {
		l.probs.addf(rel, "packages: %q is listed twice", dup)
	}
	return k
}

func (l *loader) loadVariant(name string) *Variant {
	rel := path.Join("variants", name, "variant.toml")
	data, ok := l.read(rel)
	if !ok {
		return nil
	}
	v, errs := decodeVariant(rel, data)
	l.probs.errs = append(l.probs.errs, errs...)
	v.Name = name
	v.Dir = filepath.Join(l.p.Root, "variants", name)
	v.Path = filepath.Join(v.Dir, "variant.toml")
	if !validName(name) {
		l.probs.addf(path.Join("variants", name), "invalid variant name %q: expected lower-case letters, digits, '.', '+' and '-'", name)
	}
	l.checkVariant(rel, v)
	return v
}

// crossCheck validates references between files: Twoliter.toml kits and
// release variants.
func (l *loader) crossCheck() {
	for i, ref := range l.p.Manifest.Kits {
		k, ok := l.p.Kits[ref.Name]
		switch {
		case !ok:
			l.probs.addf("Twoliter.toml", "kit[%d].name: unknown kit %q (no kits/%s/kit.toml)", i, ref.Name, ref.Name)
		case ref.Version != "" && ref.Version != k.Version:
			l.probs.addf("Twoliter.toml", "kit[%d].version: %q does not match kits/%s/kit.toml version %q", i, ref.Version, ref.Name, k.Version)
		}
	}
	for i, name := range l.p.Manifest.Release.Variants {
		if _, ok := l.p.Variants[name]; !ok {
			l.probs.addf("Twoliter.toml", "release.variants[%d]: unknown variant %q (known: %s)", i, name, strings.Join(sortedKeys(l.p.Variants), ", "))
		}
	}
	if dup := firstDuplicate(l.p.Manifest.Release.Variants); dup != "" {
		l.probs.addf("Twoliter.toml", "release.variants: %q is listed twice", dup)
	}
}

func firstDuplicate(list []string) string {
	seen := map[string]bool{}
	for _, s := range list {
		if seen[s] {
			return s
		}
		seen[s] = true
	}
	return ""
}

// Package returns the package named name (the packages/ directory name).
func (p *Project) Package(name string) (*Package, error) {
	if pkg, ok := p.Packages[name]; ok {
		return pkg, nil
	}
	return nil, invalid(fmt.Errorf("unknown package %q (known: %s)", name, strings.Join(sortedKeys(p.Packages), ", ")))
}

// Kit returns the kit named name.
func (p *Project) Kit(name string) (*Kit, error) {
	if k, ok := p.Kits[name]; ok {
		return k, nil
	}
	return nil, invalid(fmt.Errorf("unknown kit %q (known: %s)", name, strings.Join(sortedKeys(p.Kits), ", ")))
}

// Variant returns the variant named name.
func (p *Project) Variant(name string) (*Variant, error) {
	if v, ok := p.Variants[name]; ok {
		return v, nil
	}
	return nil, invalid(fmt.Errorf("unknown variant %q (known: %s)", name, strings.Join(sortedKeys(p.Variants), ", ")))
}

// PackageNames, KitNames and VariantNames return the sorted names.
func (p *Project) PackageNames() []string { return sortedKeys(p.Packages) }

// KitNames returns the sorted kit names.
func (p *Project) KitNames() []string { return sortedKeys(p.Kits) }

// VariantNames returns the sorted variant names.
func (p *Project) VariantNames() []string { return sortedKeys(p.Variants) }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// LoadManifests reads and validates only Twoliter.toml and Makefile.toml:
// enough for Config, Macros and the host tools, and usable when packages
// do not load. The returned project has no packages, kits or variants.
func LoadManifests(ctx context.Context, root string) (*Project, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("load manifests: %w", err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("resolve project root %q: %w", root, err)
	}
	l := newLoader(abs)
	l.readManifests()
	if err := l.probs.err(); err != nil {
		return nil, err
	}
	return l.p, nil
}

// readManifests reads Twoliter.toml and Makefile.toml.
func (l *loader) readManifests() {
	if data, ok := l.read("Twoliter.toml"); ok {
		var errs []error
		l.p.Manifest, errs = decodeManifest("Twoliter.toml", data)
		l.probs.errs = append(l.probs.errs, errs...)
		l.loadMigrations()
	}
	if data, ok := l.read("Makefile.toml"); ok {
		var errs []error
		l.p.Make, errs = decodeMakefile("Makefile.toml", data)
		l.probs.errs = append(l.probs.errs, errs...)
	}
}
