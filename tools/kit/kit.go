package kit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/petrel-os/petrel/sources/outfile"
	"github.com/petrel-os/petrel/tools/builder"
	"github.com/petrel-os/petrel/tools/graph"
)

// keyVersion changes when the repository layout changes.
const keyVersion = "petrel-kit-key-v1"

// Result says what Build did.
type Result struct {
	// Kit is the kit name.
	Kit string
	// Dir is the repository, <BuildDir>/kits/<kit>/<arch>.
	Dir string
	// Packages are the packages in the repository, dependencies first.
	Packages []string
	// Report is the package build report.
	Report *builder.Report
	// Assembled is false when the repository was already up to date.
	Assembled bool
}

// Build builds the packages of kit name with b and assembles its
// repository. g must be the graph b builds with.
func Build(ctx context.Context, b *builder.Builder, g *graph.Graph, name string) (*Result, error) {
	pkgs, err := g.KitPackages(name)
	if err != nil {
		return nil, fmt.Errorf("resolve packages of kit %q: %w", name, err)
	}
	rep, err := b.Build(ctx, pkgs)
	if err != nil {
		return &Result{Kit: name, Report: rep}, err
	}
	k := b.Project.Kits[name]
	res := &Result{
		Kit:      name,
		Dir:      filepath.Join(b.Config.BuildDir, "kits", name, b.Config.Arch),
		Packages: pkgs,
		Report:   rep,
	}

	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s\x00", keyVersion, k.Name, k.Version, k.Vendor, b.Config.Arch)
	var rpms []string
	for _, p := range pkgs {
		key, err := b.Key(p)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h, "%s\x00%s\x00", p, key)
		r, err := b.RPMs(p)
		if err != nil {
			return nil, err
		}
		rpms = append(rpms, r...)
	}
	key := hex.EncodeToString(h.Sum(nil))
	keyPath := filepath.Join(b.Config.BuildDir, "state", b.Config.Arch, "kits", name, "key")
	if old, err := os.ReadFile(keyPath); err == nil && strings.TrimSpace(string(old)) == key {
		if _, err := os.Stat(filepath.Join(res.Dir, "repodata", "repomd.xml")); err == nil {
			return res, nil
		}
	}
	if err := os.Remove(keyPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove %q: %w", keyPath, err)
	}
	if err := assemble(ctx, res.Dir, rpms); err != nil {
		return nil, fmt.Errorf("assemble kit %q: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o755); err != nil {
		return nil, fmt.Errorf("create kit state directory: %w", err)
	}
	if err := os.WriteFile(keyPath, []byte(key+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("record key of kit %q: %w", name, err)
	}
	res.Assembled = true
	return res, nil
}

// assemble writes the repository of rpms to dir: it builds it next to dir
// and swaps it in, so dir is always complete or absent.
func assemble(ctx context.Context, dir string, rpms []string) error {
	tmp := dir + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("clean %q: %w", tmp, err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("create %q: %w", tmp, err)
	}
	rev, err := newestBuildTime(ctx, rpms)
	if err != nil {
		return err
	}
	mtime := time.Unix(rev, 0)
	for _, r := range rpms {
		dst := filepath.Join(tmp, filepath.Base(r))
		if err := outfile.Copy(r, dst, outfile.Options{HardLink: true}); err != nil {
			return err
		}
		if err := os.Chtimes(dst, mtime, mtime); err != nil {
			return fmt.Errorf("set time of %q: %w", dst, err)
		}
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "createrepo_c", "--quiet", "--no-database", "--workers", "1",
		"--revision", strconv.FormatInt(rev, 10), "--set-timestamp-to-revision", tmp)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.FormatInt(rev, 10))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("createrepo_c: %w: %s", err, strings.TrimSpace(out.String()))
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove old repository %q: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("place repository %q: %w", dir, err)
	}
	return nil
}

// newestBuildTime returns the newest BUILDTIME of rpms, which the builder
// sets to each package's SOURCE_DATE_EPOCH.
func newestBuildTime(ctx context.Context, rpms []string) (int64, error) {
	if len(rpms) == 0 {
		return 0, errors.New("kit has no RPMs")
	}
	out, err := exec.CommandContext(ctx, "rpm", append([]string{"-qp", "--nosignature", "--qf", "%{BUILDTIME}\n"}, rpms...)...).Output()
	if err != nil {
		return 0, fmt.Errorf("read build times of RPMs: %w", err)
	}
	var times []int64
	for _, f := range strings.Fields(string(out)) {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse build time %q: %w", f, err)
		}
		times = append(times, n)
	}
	return slices.Max(times), nil
}
