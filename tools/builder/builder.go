package builder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/petrel-os/petrel/tools/fetch"
	"github.com/petrel-os/petrel/tools/project"
)

// Graph is what the builder needs of the package dependency graph
// (*graph.Graph satisfies it).
type Graph interface {
	// Closure returns roots and everything they depend on, dependencies
	// first.
	Closure(roots ...string) ([]string, error)
	// Deps returns the direct dependencies (Requires) of a package.
	Deps(name string) []string
	// BuildDeps returns the direct build dependencies (BuildRequires).
	BuildDeps(name string) []string
}

// HostTools returns the commands package and kit builds run on the host
// (directly or inside the sandbox): the subset of Twoliter.toml's [[sdk.tool]]
// list that buildctl checks before it builds.
func HostTools() []string {
	return []string{"rpmbuild", "rpm", "rpm2cpio", "createrepo_c", "bwrap", "apt-get", "dpkg-deb", "cpio", "depmod", "git", "go"}
}

// Builder builds packages. Fill the exported fields, then call Build. A
// Builder is not safe for concurrent use; one Build at a time may run on a
// build directory (Build takes a lock on it).
type Builder struct {
	Project *project.Project
	Graph   Graph
	Config  project.Config
	// Logger receives debug records (keys, commands); nil discards them.
	Logger *slog.Logger
	// Progress receives progress output: a live line on a terminal, plain
	// lines otherwise; nil discards it.
	Progress io.Writer

	// Set up by init.
	identity   []byte
	fetcher    *fetch.Fetcher
	goBin      string
	goModCache string
	goVersion  string

	// modules memoizes downloadModules: done once per Builder and module
	// directory.
	modules struct {
		sync.Mutex
		done map[string]bool
	}
}

// Report says what Build did, each list in build order.
type Report struct {
	// Built are the packages that were built.
	Built []string
	// Cached are the packages whose key did not change and whose RPMs were
	// present.
	Cached []string
	// Elapsed is the wall time of Build.
	Elapsed time.Duration
}

// Build builds pkgs and everything they depend on, skipping packages whose
// key did not change. Bad input returns an error wrapping
// project.ErrInvalidInput; a failed rpmbuild returns a *BuildError.
func (b *Builder) Build(ctx context.Context, pkgs []string) (*Report, error) {
	start := time.Now()
	if err := b.init(); err != nil {
		return nil, err
	}
	order, err := b.Graph.Closure(pkgs...)
	if err != nil {
		return nil, fmt.Errorf("resolve packages to build: %w", err)
	}
	all, err := b.resolve(ctx, order)
	if err != nil {
		return nil, err
	}
	unlock, err := b.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()

	keys := map[string]string{}
	cached := map[string]bool{}
	for _, name := range order {
		deps := map[string]string{}
		for _, d := range b.waitsOn(name) {
			deps[d] = keys[d]
		}
		if keys[name], err = b.computeKey(all[name], deps); err != nil {
			return nil, fmt.Errorf("compute cache key of %s: %w", name, err)
		}
		cached[name] = b.isCached(name, keys[name])
		b.logger().Debug("package key", "package", name, "key", keys[name], "cached", cached[name])
	}

	rep := &Report{}
	prog := newProgress(b.Progress, len(order))
	defer prog.stop()
	for _, name := range order {
		if cached[name] {
			rep.Cached = append(rep.Cached, name)
			prog.cached(name)
		}
	}

	done := make(map[string]chan struct{}, len(order))
	for _, name := range order {
		done[name] = make(chan struct{})
		if cached[name] {
			close(done[name])
		}
	}
	jobs := max(b.Config.Jobs, 1)
	sem := make(chan struct{}, jobs)
	built := make(chan string, len(order))
	g, gctx := errgroup.WithContext(ctx)
	for _, name := range order {
		if cached[name] {
			continue
		}
		g.Go(func() error {
			for _, d := range b.waitsOn(name) {
				select {
				case <-done[d]:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			select {
			case sem <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			defer func() { <-sem }()
			prog.started(name)
			t0 := time.Now()
			err := b.buildPackage(gctx, name, all[name], keys[name])
			prog.finished(name, time.Since(t0), err)
			if err != nil {
				return err
			}
			built <- name
			close(done[name])
			return nil
		})
	}
	err = g.Wait()
	close(built)
	finished := map[string]bool{}
	for n := range built {
		finished[n] = true
	}
	for _, name := range order {
		if finished[name] {
			rep.Built = append(rep.Built, name)
		}
	}
	rep.Elapsed = time.Since(start)
	if err != nil {
		return rep, err
	}
	return rep, nil
}

// waitsOn returns the packages whose builds must finish before name's:
// its build and runtime dependencies.
func (b *Builder) waitsOn(name string) []string {
	set := map[string]bool{}
	for _, d := range b.Graph.Deps(name) {
		set[d] = true
	}
	for _, d := range b.Graph.BuildDeps(name) {
		set[d] = true
	}
	delete(set, name)
	return slices.Sorted(maps.Keys(set))
}

// init checks the configuration and computes what every build shares.
func (b *Builder) init() error {
	if b.Project == nil || b.Graph == nil {
		return errors.New("builder: Project and Graph must be set")
	}
	if !filepath.IsAbs(b.Config.BuildDir) {
		return fmt.Errorf("%w: build directory %q is not absolute", project.ErrInvalidInput, b.Config.BuildDir)
	}
	id, err := IdentityMacros(b.Project, b.Config.Arch)
	if err != nil {
		return err
	}
	b.identity = id
	b.fetcher = fetch.New(b.Config)
	if goCmd, err := exec.LookPath("go"); err == nil {
		if real, err := filepath.EvalSymlinks(goCmd); err == nil {
			goCmd = real
		}
		b.goBin = filepath.Dir(goCmd)
	}
	b.goModCache, b.goVersion = "/nonexistent", "none"
	if b.goBin != "" {
		if out, err := exec.Command(filepath.Join(b.goBin, "go"), "env", "GOMODCACHE", "GOVERSION").Output(); err == nil {
			if f := strings.Fields(string(out)); len(f) == 2 {
				b.goModCache, b.goVersion = f[0], f[1]
			}
		}
	}
	return nil
}

// resolve gathers the inputs of every package in order: its external
// files and its SOURCE_DATE_EPOCH. (project.Load has checked that the
// files the specs name exist.) It reports every problem at once.
func (b *Builder) resolve(ctx context.Context, order []string) (map[string]*inputs, error) {
	all := make(map[string]*inputs, len(order))
	var errs []error
	for _, name := range order {
		pkg, ok := b.Project.Packages[name]
		if !ok {
			errs = append(errs, fmt.Errorf("%w: unknown package %q", project.ErrInvalidInput, name))
			continue
		}
		ext, err := externalsOf(pkg)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		all[name] = &inputs{pkg: pkg, externals: ext}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, name := range order {
		in := all[name]
		g.Go(func() error {
			e, err := sourceDateEpoch(gctx, b.Project.Root, in.pkg)
			in.epoch = e
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("determine SOURCE_DATE_EPOCH: %w", err)
	}
	return all, nil
}

// isCached reports whether name's recorded key is key and its RPMs exist.
func (b *Builder) isCached(name, key string) bool {
	st, err := readState(filepath.Join(b.stateDir(name), "key"))
	if err != nil || st.Key != key || len(st.RPMs) == 0 {
		return false
	}
	for _, r := range st.RPMs {
		if _, err := os.Stat(filepath.Join(b.rpmDir(name), r)); err != nil {
			return false
		}
	}
	return true
}

// RPMs returns the paths of the RPMs the last successful build of pkg
// produced.
func (b *Builder) RPMs(pkg string) ([]string, error) {
	path := filepath.Join(b.stateDir(pkg), "key")
	st, err := readState(path)
	if err != nil {
		return nil, fmt.Errorf("read build state of %s (not built yet?): %w", pkg, err)
	}
	out := make([]string, 0, len(st.RPMs))
	for _, r := range st.RPMs {
		p := filepath.Join(b.rpmDir(pkg), r)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("find RPM of %s: %w", pkg, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// Key returns the cache key recorded by the last successful build of pkg.
func (b *Builder) Key(pkg string) (string, error) {
	st, err := readState(filepath.Join(b.stateDir(pkg), "key"))
	if err != nil {
		return "", fmt.Errorf("read build state of %s (not built yet?): %w", pkg, err)
	}
	return st.Key, nil
}

// LogPath returns the path of pkg's build log.
func (b *Builder) LogPath(pkg string) string {
	return filepath.Join(b.Config.BuildDir, "logs", pkg+".log")
}

func (b *Builder) stateDir(pkg string) string {
	return filepath.Join(b.Config.BuildDir, "state", b.Config.Arch, "packages", pkg)
}

func (b *Builder) rpmDir(pkg string) string {
	return filepath.Join(b.Config.BuildDir, "rpms", pkg)
}

// lock takes an exclusive lock on the build directory, so that two
// buildctl runs never build into it at once.
func (b *Builder) lock() (func(), error) {
	dir := filepath.Join(b.Config.BuildDir, "state")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open build lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock build directory %q (is another buildctl running?): %w", b.Config.BuildDir, err)
	}
	return func() { f.Close() }, nil
}

func (b *Builder) logger() *slog.Logger {
	if b.Logger != nil {
		return b.Logger
	}
	return slog.New(slog.DiscardHandler)
}
