package updater

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/outfile"
)

// Prefetch saves what the settings migrator will need to move the
// datastore from version from to version to (either way) into dir, the
// directory its TUF source reads targets from (MigratorTargetsDir on a
// host): manifest.json and each migration of the chain
// (manifest.Migrations.Chain), under their consistent-snapshot names
// (<sha256>.<name>), each verified while it streams and written
// atomically; then it removes every other file of dir (what an earlier
// update saved). It returns the migrations of the chain. The update agent
// calls it after the refresh that chose the update and before it marks
// the new bank valid, and saves the metadata of that refresh beside it
// (SaveMetadata) for the migrator to load. Upstream's updog caches the
// migrations the same way before it writes the images.
func (r *Repo) Prefetch(ctx context.Context, from, to manifest.Version, dir string) ([]string, error) {
	m, err := r.Manifest(ctx)
	if err != nil {
		return nil, err
	}
	names, err := m.Migrations.Chain(from, to)
	if err != nil {
		return nil, fmt.Errorf("prefetch migrations from %s to %s: %w", from, to, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("prefetch migrations: %w", err)
	}
	keep := map[string]bool{}
	for _, name := range append([]string{manifest.TargetName}, names...) {
		file, err := r.save(ctx, name, dir)
		if err != nil {
			return nil, err
		}
		keep[file] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("prefetch migrations: %w", err)
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return nil, fmt.Errorf("prefetch migrations: remove what an earlier update saved: %w", err)
			}
		}
	}
	return names, nil
}

// Save downloads target name into dir under the name URL gives it
// (<sha256>.<name> in a consistent-snapshot repository), verified, written
// atomically and durably. A file of that name already there is kept: its
// name is its content's hash.
func (r *Repo) Save(ctx context.Context, name, dir string) error {
	_, err := r.save(ctx, name, dir)
	return err
}

// save is Save, returning the file's name in dir.
func (r *Repo) save(ctx context.Context, name, dir string) (string, error) {
	t, err := r.Target(name)
	if err != nil {
		return "", fmt.Errorf("save %s: %w", name, err)
	}
	u, err := url.Parse(r.URL(t))
	if err != nil {
		return "", fmt.Errorf("save %s: %w", name, err)
	}
	file := path.Base(u.Path)
	dest := filepath.Join(dir, file)
	if _, err := os.Stat(dest); err == nil {
		return file, nil
	}
	f, err := outfile.New(dest, outfile.Options{Mode: 0o600})
	if err != nil {
		return "", fmt.Errorf("save %s: %w", name, err)
	}
	defer f.Discard()
	if err := r.Download(ctx, name, f); err != nil {
		return "", fmt.Errorf("save %s: %w", name, err)
	}
	if err := f.Commit(); err != nil {
		return "", fmt.Errorf("save %s: %w", name, err)
	}
	return file, nil
}

// SaveMetadata writes the metadata r was verified from (root, timestamp,
// snapshot and targets, as the cache names them) into dir, each durably,
// so that a client whose CacheDir is dir loads exactly this view with
// Cached: the settings migrator at the next boot reads the migrations
// Prefetch saved with it, whatever later refreshes do to the agent's own
// cache (a newer manifest has another hash, and a refresh cut short leaves
// a cache Cached refuses).
func (r *Repo) SaveMetadata(dir string) error {
	c, err := openCache(dir)
	if err != nil {
		return err
	}
	for _, role := range []string{metadata.ROOT, metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS} {
		if err := c.write(role, r.raw[role]); err != nil {
			return fmt.Errorf("save metadata: %w", err)
		}
	}
	return nil
}
