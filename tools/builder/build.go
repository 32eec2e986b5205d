package builder

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/petrel-os/petrel/sources/outfile"
	"github.com/petrel-os/petrel/tools/project"
)

// rpmbuild tree directories, created in every build's work directory.
var rpmbuildDirs = []string{"SOURCES", "SPECS", "BUILD", "BUILDROOT", "RPMS", "SRPMS", "sysroot", "macros", "gosrc"}

// buildPackage builds one package whose dependencies are built, and
// records its key once its RPMs are in place.
func (b *Builder) buildPackage(ctx context.Context, name string, in *inputs, key string) error {
	pkg := in.pkg
	stateDir := b.stateDir(name)
	keyPath := filepath.Join(stateDir, "key")
	// An interrupted build must never look cached.
	if err := os.Remove(keyPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %q: %w", keyPath, err)
	}
	work := filepath.Join(stateDir, "work")
	if err := os.RemoveAll(work); err != nil {
		return fmt.Errorf("clean work directory of %s: %w", name, err)
	}
	for _, d := range rpmbuildDirs {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			return fmt.Errorf("create work directory of %s: %w", name, err)
		}
	}
	if err := b.stageSources(ctx, work, in); err != nil {
		return err
	}
	if err := b.stageSysroot(ctx, work, name); err != nil {
		return err
	}
	if err := b.stageGo(ctx, work, pkg); err != nil {
		return err
	}
	if pkg.GoModule {
		if err := b.downloadModules(ctx, pkg.Dir); err != nil {
			return fmt.Errorf("build Go module of %s: %w", pkg.Name, err)
		}
	}
	buildMacros := fmt.Sprintf("%%_cross_sysroot %s/sysroot\n%%_petrel_gosrc %s/gosrc\n%%_petrel_gocache %s\n%%_petrel_gomodcache %s\n",
		sandboxTop, sandboxTop, sandboxGoCache, b.goModCache)
	if err := os.WriteFile(filepath.Join(work, "macros", "identity.macros"), append(slices.Clone(b.identity), buildMacros...), 0o644); err != nil {
		return fmt.Errorf("write macros of %s: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(work, "macros", "petrel.macros"), policyMacros, 0o644); err != nil {
		return fmt.Errorf("write macros of %s: %w", name, err)
	}

	logPath := b.LogPath(name)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return fmt.Errorf("create log directory: %w", err)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("create build log: %w", err)
	}
	defer logFile.Close()

	goCache := filepath.Join(b.Config.BuildDir, "cache", "go-build")
	if err := os.MkdirAll(goCache, 0o755); err != nil {
		return fmt.Errorf("create Go build cache: %w", err)
	}
	sb := &sandbox{top: work, goCache: goCache, goBin: b.goBin, epoch: strconv.FormatInt(in.epoch, 10)}
	spec := "SPECS/" + filepath.Base(pkg.SpecPath)
	cmd := sb.command(ctx, "rpmbuild", "-bb", "--nodeps",
		// Not --target: rpmbuild rereads its configuration per target and
		// would drop the --load'ed macros.
		"--define", "_target_cpu "+b.Config.Arch,
		"--load", sandboxTop+"/macros/identity.macros",
		"--load", sandboxTop+"/macros/petrel.macros",
		"--define", "_topdir "+sandboxTop,
		"--define", "_tmppath /tmp",
		spec)
	fmt.Fprintf(logFile, "# buildctl: package %s, key %s, SOURCE_DATE_EPOCH=%d\n# %s\n", name, key, in.epoch, strings.Join(cmd.Args, " "))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Run(); err != nil {
		logFile.Sync()
		if ctx.Err() != nil {
			return fmt.Errorf("build package %q: %w", name, ctx.Err())
		}
		return &BuildError{Package: name, Log: logPath, Tail: tail(logPath, tailLines), Err: fmt.Errorf("rpmbuild: %w", err)}
	}

	rpms, err := filepath.Glob(filepath.Join(work, "RPMS", "*", "*.rpm"))
	if err != nil || len(rpms) == 0 {
		return &BuildError{Package: name, Log: logPath, Tail: tail(logPath, tailLines), Err: errors.New("rpmbuild produced no RPMs")}
	}
	names, err := b.placeRPMs(name, rpms)
	if err != nil {
		return err
	}
	if err := writeState(keyPath, state{Key: key, RPMs: names}); err != nil {
		return fmt.Errorf("record key of %s: %w", name, err)
	}
	if err := os.RemoveAll(work); err != nil {
		return fmt.Errorf("clean work directory of %s: %w", name, err)
	}
	return nil
}

// placeRPMs replaces <BuildDir>/rpms/<pkg>/ with the built RPMs.
func (b *Builder) placeRPMs(pkg string, rpms []string) ([]string, error) {
	dest := b.rpmDir(pkg)
	tmp := dest + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("clean %q: %w", tmp, err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("create %q: %w", tmp, err)
	}
	var names []string
	for _, r := range rpms {
		n := filepath.Base(r)
		if err := os.Rename(r, filepath.Join(tmp, n)); err != nil {
			return nil, fmt.Errorf("move %s into %q: %w", n, tmp, err)
		}
		names = append(names, n)
	}
	slices.Sort(names)
	if err := os.RemoveAll(dest); err != nil {
		return nil, fmt.Errorf("remove old RPMs of %s: %w", pkg, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		return nil, fmt.Errorf("place RPMs of %s: %w", pkg, err)
	}
	return names, nil
}

// stageSources copies the spec, the local files and the fetched external
// files into the rpmbuild tree.
func (b *Builder) stageSources(ctx context.Context, work string, in *inputs) error {
	pkg := in.pkg
	if err := stageFile(pkg.SpecPath, filepath.Join(work, "SPECS", filepath.Base(pkg.SpecPath))); err != nil {
		return err
	}
	for _, f := range pkg.LocalFiles {
		if err := stageFile(filepath.Join(pkg.Dir, f), filepath.Join(work, "SOURCES", f)); err != nil {
			return err
		}
	}
	for _, e := range in.externals {
		p, err := b.fetcher.Fetch(ctx, e.file)
		if err != nil {
			return fmt.Errorf("fetch external file of package %q: %w", pkg.Name, err)
		}
		dst := filepath.Join(work, "SOURCES", filepath.Base(p))
		// The cache is content-addressed and verified on every use, so a
		// hard link is safe and saves copying large files.
		if err := outfile.Copy(p, dst, outfile.Options{HardLink: true, NoSync: true}); err != nil {
			return err
		}
	}
	return nil
}

// stageSysroot unpacks the RPMs of the build dependencies of pkg (and what
// they require) into work/sysroot.
func (b *Builder) stageSysroot(ctx context.Context, work, pkg string) error {
	deps := b.Graph.BuildDeps(pkg)
	if len(deps) == 0 {
		return nil
	}
	closure, err := b.Graph.Closure(deps...)
	if err != nil {
		return fmt.Errorf("resolve build dependencies of %s: %w", pkg, err)
	}
	sysroot := filepath.Join(work, "sysroot")
	for _, d := range closure {
		rpms, err := b.RPMs(d)
		if err != nil {
			return fmt.Errorf("install build dependency %s of %s: %w", d, pkg, err)
		}
		for _, r := range rpms {
			if err := unpackRPM(ctx, r, sysroot); err != nil {
				return fmt.Errorf("install build dependency %s of %s: %w", d, pkg, err)
			}
		}
	}
	return nil
}

// unpackRPM extracts the payload of rpm into dir (rpm2cpio | cpio), which
// needs no RPM database and no privileges.
func unpackRPM(ctx context.Context, rpm, dir string) error {
	r2c := exec.CommandContext(ctx, "rpm2cpio", rpm)
	cpio := exec.CommandContext(ctx, "cpio", "-idm", "--quiet", "--no-absolute-filenames")
	cpio.Dir = dir
	pipe, err := r2c.StdoutPipe()
	if err != nil {
		return fmt.Errorf("unpack %q: %w", rpm, err)
	}
	var errR, errC bytes.Buffer
	r2c.Stderr = &errR
	cpio.Stdin, cpio.Stderr = pipe, &errC
	if err := r2c.Start(); err != nil {
		return fmt.Errorf("start rpm2cpio %q: %w", rpm, err)
	}
	cerr := cpio.Run()
	rerr := r2c.Wait()
	if rerr != nil {
		return fmt.Errorf("rpm2cpio %q: %w: %s", rpm, rerr, strings.TrimSpace(errR.String()))
	}
	if cerr != nil {
		return fmt.Errorf("cpio of %q: %w: %s", rpm, cerr, strings.TrimSpace(errC.String()))
	}
	return nil
}

// stageGo copies go.mod, go.sum, the source groups and the Go commands of
// pkg to work/gosrc, the only first-party Go code its build can see.
func (b *Builder) stageGo(ctx context.Context, work string, pkg *project.Package) error {
	if len(pkg.GoCommands) == 0 && len(pkg.SourceGroups) == 0 {
		return nil
	}
	if len(pkg.GoCommands) > 0 {
		if b.goBin == "" {
			return fmt.Errorf("build Go commands of %s: the go command is not in PATH (install Go 1.26)", pkg.Name)
		}
		if err := b.downloadModules(ctx, b.Project.Root); err != nil {
			return fmt.Errorf("build Go commands of %s: %w", pkg.Name, err)
		}
	}
	root, dst := b.Project.Root, filepath.Join(work, "gosrc")
	for _, f := range []string{"go.mod", "go.sum"} {
		if err := stageFile(filepath.Join(root, f), filepath.Join(dst, f)); err != nil {
			return err
		}
	}
	var trees []string
	for _, g := range pkg.SourceGroups {
		trees = append(trees, filepath.Join("sources", g))
	}
	for _, c := range pkg.GoCommands {
		trees = append(trees, filepath.Join("cmd", c))
	}
	for _, t := range trees {
		if err := copyTree(filepath.Join(root, t), filepath.Join(dst, t)); err != nil {
			return err
		}
	}
	return nil
}

// copyTree copies the regular files and symlinks under src to dst.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("walk %q: %w", src, err)
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("read link %q: %w", p, err)
			}
			return os.Symlink(l, target)
		case d.Type().IsRegular():
			return stageFile(p, target)
		}
		return nil
	})
}

// downloadModules runs `go mod download` in the module at dir (the
// project, or a go-module package), outside the sandbox, once per Builder
// and module. The sandboxed build has no network and reads the module
// cache read-only (GOPROXY=off), so every module go.mod needs must be
// there first; on a fresh machine `go run ./cmd/buildctl` has downloaded
// only buildctl's own. The go command checks every download against the
// module's go.sum, so a go.sum pins the modules by hash.
func (b *Builder) downloadModules(ctx context.Context, dir string) error {
	if b.goBin == "" {
		return fmt.Errorf("download Go modules of %s: the go command is not in PATH (install Go 1.26)", dir)
	}
	b.modules.Lock()
	defer b.modules.Unlock()
	if b.modules.done[dir] {
		return nil
	}
	cmd := exec.CommandContext(ctx, filepath.Join(b.goBin, "go"), "mod", "download")
	cmd.Dir = dir
	// A go-module package is a module of its own, never part of a
	// workspace.
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("download Go modules of %s: %w\n%s", dir, err, bytes.TrimSpace(out))
	}
	if b.modules.done == nil {
		b.modules.done = map[string]bool{}
	}
	b.modules.done[dir] = true
	return nil
}

// stageFile copies src into the scratch rpmbuild tree at dst, creating
// dst's directory and keeping src's permission bits. Nothing reads the
// tree after a crash, so nothing is fsynced.
func stageFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("create directory of %q: %w", dst, err)
	}
	return outfile.Copy(src, dst, outfile.Options{NoSync: true})
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
