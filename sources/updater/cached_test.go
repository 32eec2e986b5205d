package updater

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/petrel-os/petrel/sources/tufrepo"
)

// TestCached: after a refresh, the cache alone gives a verified view of
// the repository, with no request, long after every role expired; the
// targets come from a file URL. A cache that lacks a role, or holds a
// file the role above does not name, is refused.
func TestCached(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if _, err := f.refresh(f.client()); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.requests)
	}
	n := count()
	f.now = f.now.Add(400 * 24 * time.Hour) // root and every role expired
	offline := func(c *Config) { c.TargetsURL = "file://" + filepath.Join(f.dir, tufrepo.TargetsDir) }
	r, err := f.client(offline).Cached()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.Download(context.Background(), "image.zst", &b); err != nil || !bytes.Equal(b.Bytes(), f.image) {
		t.Fatalf("Download = %v (%d bytes)", err, b.Len())
	}
	if count() != n {
		t.Fatalf("Cached made %d requests", count()-n)
	}
	if _, err := f.client().Refresh(context.Background()); !errors.Is(err, ErrExpired) {
		t.Fatalf("Refresh of the expired repository = %v, want ErrExpired (Cached must be the only way round it)", err)
	}

	// A snapshot the cached timestamp does not name.
	f.now = start.Add(time.Hour)
	f.commit(false, nil)
	if err := os.WriteFile(filepath.Join(f.cacheDir, "snapshot.json"), f.file(f.repo.FileName(metadata.SNAPSHOT)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client(offline).Cached(); !errors.Is(err, ErrMixAndMatch) {
		t.Fatalf("Cached with a foreign snapshot = %v, want ErrMixAndMatch", err)
	}
	if err := os.Remove(filepath.Join(f.cacheDir, "snapshot.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.client(offline).Cached(); !errors.Is(err, ErrNotCached) {
		t.Fatalf("Cached without a snapshot = %v, want ErrNotCached", err)
	}
}
