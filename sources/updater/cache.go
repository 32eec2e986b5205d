package updater

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/petrel-os/petrel/sources/outfile"
)

// cache is the directory of verified metadata: root.json, timestamp.json,
// snapshot.json and targets.json, each the newest trusted version. It is
// what makes a rollback or freeze visible after a restart, so every write
// is durable before the refresh goes on (outfile: fsync, rename, fsync the
// directory).
type cache struct{ dir string }

func openCache(dir string) (*cache, error) {
	if dir == "" {
		return nil, errors.New("open metadata cache: no directory given")
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create metadata cache: %w", err)
		}
		if err := outfile.SyncDir(filepath.Dir(dir)); err != nil {
			return nil, fmt.Errorf("create metadata cache: %w", err)
		}
	}
	return &cache{dir: dir}, nil
}

func (c *cache) path(role string) string { return filepath.Join(c.dir, role+".json") }

// read returns the cached metadata of role, or nil when there is none.
func (c *cache) read(role string) ([]byte, error) {
	data, err := os.ReadFile(c.path(role))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read cached %s metadata: %w", role, err)
	}
	return data, nil
}

func (c *cache) write(role string, data []byte) error {
	if err := outfile.WriteFile(c.path(role), data, outfile.Options{Mode: 0o600}); err != nil {
		return fmt.Errorf("cache %s metadata: %w", role, err)
	}
	return nil
}

// remove drops role's cached metadata (after a key rotation of the role).
func (c *cache) remove(role string) error {
	if err := os.Remove(c.path(role)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("drop cached %s metadata: %w", role, err)
	}
	return outfile.SyncDir(c.dir)
}

// lock serialises refreshes of processes that share the cache (the
// agent's check-update and update-image, say): without it one could
// write back a timestamp older than the other's. It waits while ctx
// lasts.
func (c *cache) lock(ctx context.Context) (unlock func(), err error) {
	unlock, err = lock(ctx, c.dir)
	if err != nil {
		return nil, fmt.Errorf("lock metadata cache: %w", err)
	}
	return unlock, nil
}
