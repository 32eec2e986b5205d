package migration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/updater"
)

// Source gives the migrator the manifest and the migration files.
type Source interface {
	// Manifest returns the manifest whose migrations map gives the chain.
	Manifest(ctx context.Context) (*manifest.Manifest, error)
	// Migration returns the content of the migration file name (its
	// target name in the manifest).
	Migration(ctx context.Context, name string) ([]byte, error)
}

// TUFSource reads the manifest and the migrations as targets of the
// host's TUF repository, from the metadata cache and the directory the
// update agent saved the targets to (updater.Repo.Prefetch; see
// updater.Client.Cached): nothing
// is fetched from the network, every file is checked against its signed
// length and hashes, and expiry is not enforced (the clock may be wrong
// before the settings are migrated), as upstream's migrator does. The
// repository is loaded at the first call.
type TUFSource struct {
	Config updater.Config

	once sync.Once
	repo *updater.Repo
	err  error
}

func (s *TUFSource) load() (*updater.Repo, error) {
	s.once.Do(func() {
		c, err := updater.New(s.Config)
		if err != nil {
			s.err = err
			return
		}
		s.repo, s.err = c.Cached()
	})
	return s.repo, s.err
}

// Manifest reads the signed manifest.json.
func (s *TUFSource) Manifest(ctx context.Context) (*manifest.Manifest, error) {
	r, err := s.load()
	if err != nil {
		return nil, err
	}
	return r.Manifest(ctx)
}

// Migration reads and verifies the migration target name.
func (s *TUFSource) Migration(ctx context.Context, name string) ([]byte, error) {
	r, err := s.load()
	if err != nil {
		return nil, err
	}
	return download(ctx, r, name)
}

// download reads target name, refusing one signed longer than MaxSize.
func download(ctx context.Context, r *updater.Repo, name string) ([]byte, error) {
	t, err := r.Target(name)
	if err != nil {
		return nil, fmt.Errorf("read migration %s: %w", name, err)
	}
	if t.Length > MaxSize {
		return nil, fmt.Errorf("read migration %s: signed length %d exceeds the limit of %d bytes", name, t.Length, MaxSize)
	}
	var b bytes.Buffer
	if err := r.Download(ctx, name, &b); err != nil {
		return nil, fmt.Errorf("read migration %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// DirSource reads manifest.json and the migration files, unsigned, from
// a directory: for tests and for trying migrations on a build machine.
// Hosts use TUFSource.
type DirSource struct{ Dir string }

// Manifest reads Dir/manifest.json.
func (s DirSource) Manifest(ctx context.Context) (*manifest.Manifest, error) {
	data, err := readLimited(filepath.Join(s.Dir, manifest.TargetName), manifest.MaxSize)
	if err != nil {
		return nil, err
	}
	return manifest.Parse(data)
}

// Migration reads Dir/name.
func (s DirSource) Migration(ctx context.Context, name string) ([]byte, error) {
	if name != filepath.Base(name) || name == "." || name == ".." {
		return nil, fmt.Errorf("read migration %q: not a plain file name", name)
	}
	return readLimited(filepath.Join(s.Dir, name), MaxSize)
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("read %s: more than the limit of %d bytes", path, limit)
	}
	return data, nil
}
