package initrd

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// ErrModuleNotFound is wrapped when a requested module or a hard
// dependency is neither in the module tree nor built into the kernel.
var ErrModuleNotFound = errors.New("kernel module not found")

// Module is one kernel module of a resolved closure.
type Module struct {
	Name     string   // canonical name, '-' replaced by '_'
	Path     string   // path relative to the module directory, as found (.ko, .ko.xz, .ko.zst or .ko.gz)
	Depends  []string // hard dependencies (modinfo "depends=")
	SoftPre  []string // soft dependencies loaded before (modinfo "softdep=pre:")
	SoftPost []string // soft dependencies loaded after (modinfo "softdep=post:")
	// After names the modules of the closure that must be loaded before
	// this one: its hard dependencies, the providers of its soft "pre"
	// dependencies and the modules that name it a soft "post" dependency,
	// each one earlier in the order. The initramfs loads modules whose
	// After are loaded in parallel.
	After []string
}

// ArchivePath is the path the module gets inside the initramfs: below
// /lib/modules/<kver>/ and always uncompressed (.ko), so finit_module needs
// no in-kernel decompression support.
func (m Module) ArchivePath(kver string) string {
	return "lib/modules/" + kver + "/" + trimKoExt(m.Path) + ".ko"
}

var koExts = []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"}

func trimKoExt(p string) string {
	for _, e := range koExts[1:] {
		if s, ok := strings.CutSuffix(p, e); ok {
			return s
		}
	}
	return strings.TrimSuffix(p, ".ko")
}

// canonical returns the module name modprobe would use.
func canonical(name string) string { return strings.ReplaceAll(name, "-", "_") }

// modinfo is the parsed .modinfo section of a module.
type modinfo struct {
	name     string
	depends  []string
	softPre  []string
	softPost []string
	aliases  []string
}

// parseModinfo decodes a .modinfo section: NUL-separated key=value
// strings. Unknown keys are ignored.
func parseModinfo(sec []byte) (modinfo, error) {
	var mi modinfo
	for _, kv := range bytes.Split(sec, []byte{0}) {
		if len(kv) == 0 {
			continue
		}
		k, v, ok := strings.Cut(string(kv), "=")
		if !ok {
			return modinfo{}, fmt.Errorf("modinfo entry %q: expected key=value", kv)
		}
		switch k {
		case "name":
			mi.name = canonical(v)
		case "depends":
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					mi.depends = append(mi.depends, canonical(d))
				}
			}
		case "softdep":
			// "pre: a b post: c"
			var dst *[]string
			for _, w := range strings.Fields(v) {
				switch w {
				case "pre:":
					dst = &mi.softPre
				case "post:":
					dst = &mi.softPost
				default:
					// Words before "pre:"/"post:" are ignored, as kmod does
					// (e.g. cifs declares softdep=gcm).
					if dst != nil {
						*dst = append(*dst, canonical(w))
					}
				}
			}
		case "alias":
			mi.aliases = append(mi.aliases, v)
		}
	}
	return mi, nil
}

// moduleTree indexes a /lib/modules/<kver> directory.
type moduleTree struct {
	dir     string
	paths   map[string]string // canonical name -> relative path
	builtin map[string]bool
	info    map[string]modinfo
	aliases map[string][]string // built on first use
}

func openTree(ctx context.Context, dir string) (*moduleTree, error) {
	t := &moduleTree{dir: dir, paths: map[string]string{}, builtin: map[string]bool{}, info: map[string]modinfo{}}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		for _, e := range koExts {
			if strings.HasSuffix(rel, e) {
				name := canonical(strings.TrimSuffix(filepath.Base(rel), e))
				// updates/ overrides the stock module, as with depmod's default search order.
				if old, dup := t.paths[name]; !dup || strings.HasPrefix(rel, "updates/") && !strings.HasPrefix(old, "updates/") {
					t.paths[name] = rel
				}
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index kernel modules in %q: %w", dir, err)
	}
	if len(t.paths) == 0 {
		return nil, fmt.Errorf("index kernel modules in %q: no .ko files found", dir)
	}
	f, err := os.Open(filepath.Join(dir, "modules.builtin"))
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			if l != "" {
				t.builtin[canonical(strings.TrimSuffix(filepath.Base(l), ".ko"))] = true
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("read %q: %w", f.Name(), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read modules.builtin: %w", err)
	}
	return t, nil
}

// readModule returns the uncompressed contents of the module at rel.
func (t *moduleTree) readModule(rel string) ([]byte, error) {
	p := filepath.Join(t.dir, filepath.FromSlash(rel))
	raw, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read module: %w", err)
	}
	var r io.Reader
	switch {
	case strings.HasSuffix(rel, ".ko"):
		return raw, nil
	case strings.HasSuffix(rel, ".xz"):
		r, err = xz.NewReader(bytes.NewReader(raw))
	case strings.HasSuffix(rel, ".zst"):
		var d *zstd.Decoder
		d, err = zstd.NewReader(bytes.NewReader(raw), zstd.WithDecoderConcurrency(1))
		if err == nil {
			defer d.Close()
			r = d
		}
	case strings.HasSuffix(rel, ".gz"):
		r, err = gzip.NewReader(bytes.NewReader(raw))
	}
	if err != nil {
		return nil, fmt.Errorf("decompress module %q: %w", p, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("decompress module %q: %w", p, err)
	}
	return out, nil
}

func (t *moduleTree) modinfo(name string) (modinfo, error) {
	if mi, ok := t.info[name]; ok {
		return mi, nil
	}
	rel := t.paths[name]
	data, err := t.readModule(rel)
	if err != nil {
		return modinfo{}, err
	}
	ef, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return modinfo{}, fmt.Errorf("parse ELF of module %q: %w", rel, err)
	}
	sec := ef.Section(".modinfo")
	if sec == nil {
		return modinfo{}, fmt.Errorf("parse module %q: no .modinfo section", rel)
	}
	b, err := sec.Data()
	if err != nil {
		return modinfo{}, fmt.Errorf("read .modinfo of module %q: %w", rel, err)
	}
	mi, err := parseModinfo(b)
	if err != nil {
		return modinfo{}, fmt.Errorf("parse .modinfo of module %q: %w", rel, err)
	}
	t.info[name] = mi
	return mi, nil
}

// providers returns the modules a soft dependency name refers to: the
// module of that name, else every module declaring it as an alias (e.g.
// "crc32c" is provided by crc32c_generic and crc32c_intel).
func (t *moduleTree) providers(ctx context.Context, name string) ([]string, error) {
	if _, ok := t.paths[name]; ok || t.builtin[name] {
		return []string{name}, nil
	}
	if t.aliases == nil {
		t.aliases = map[string][]string{}
		names := make([]string, 0, len(t.paths))
		for n := range t.paths {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			mi, err := t.modinfo(n)
			if err != nil {
				continue // an unreadable unrelated module provides nothing
			}
			for _, a := range mi.aliases {
				t.aliases[canonical(a)] = append(t.aliases[canonical(a)], n)
			}
		}
	}
	return t.aliases[name], nil
}

// ResolveModules returns the modules named (with '-' or '_'), plus
// everything they depend on, in an order that loads dependencies first.
// Soft dependencies ("softdep=pre:"/"post:") are followed through module
// names and aliases; a missing soft dependency is not an error. Modules
// built into the kernel (modules.builtin) are left out. Every missing
// module is reported at once.
func ResolveModules(ctx context.Context, moduleDir string, names []string) ([]Module, error) {
	t, err := openTree(ctx, moduleDir)
	if err != nil {
		return nil, err
	}
	return t.resolve(ctx, names)
}

func (t *moduleTree) resolve(ctx context.Context, names []string) ([]Module, error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	postOf := map[string][]string{} // module → the modules that name it a soft "post" dependency
	var order []Module
	var errs []error
	var visit func(name string, chain []string, soft bool)
	visit = func(name string, chain []string, soft bool) {
		if ctx.Err() != nil || t.builtin[name] || state[name] == done {
			return
		}
		if state[name] == visiting {
			if !soft {
				errs = append(errs, fmt.Errorf("module dependency cycle: %s", strings.Join(append(chain, name), " -> ")))
			}
			return
		}
		if _, ok := t.paths[name]; !ok {
			if !soft {
				what := "requested"
				if len(chain) > 0 {
					what = "needed by " + strings.Join(chain, " -> ")
				}
				errs = append(errs, fmt.Errorf("%w: %q (%s) in %q", ErrModuleNotFound, name, what, t.dir))
			}
			return
		}
		state[name] = visiting
		mi, err := t.modinfo(name)
		if err != nil {
			errs = append(errs, err)
			state[name] = done
			return
		}
		next := append(append([]string{}, chain...), name)
		softVisit := func(deps []string) (visited []string) {
			for _, d := range deps {
				ps, err := t.providers(ctx, d)
				if err != nil {
					errs = append(errs, err)
					return visited
				}
				for _, p := range ps {
					visit(p, next, true)
					visited = append(visited, p)
				}
			}
			return visited
		}
		after := softVisit(mi.softPre)
		for _, d := range mi.depends {
			visit(d, next, false)
			after = append(after, canonical(d))
		}
		state[name] = done
		order = append(order, Module{Name: name, Path: t.paths[name], Depends: mi.depends, SoftPre: mi.softPre, SoftPost: mi.softPost, After: after})
		for _, p := range softVisit(mi.softPost) {
			postOf[p] = append(postOf[p], name)
		}
	}
	for _, n := range names {
		visit(canonical(n), nil, false)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("resolve kernel modules: %w", err)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("resolve kernel modules: %w", errors.Join(errs...))
	}
	// Keep in After only modules of the closure earlier in the order
	// (built-in ones and soft dependencies met later drop out), once.
	pos := map[string]int{}
	for i, m := range order {
		pos[m.Name] = i
	}
	for i := range order {
		m := &order[i]
		var after []string
		for _, n := range append(m.After, postOf[m.Name]...) {
			if p, ok := pos[n]; ok && p < i && !slices.Contains(after, n) {
				after = append(after, n)
			}
		}
		m.After = after
	}
	return order, nil
}
