package updater

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/manifest"
)

// TestPrefetchWithSavedMetadata: what the agent saves for the next boot's
// migrator (the metadata of its refresh and the targets of the migration
// chain) stays readable offline after the repository moved on and the
// agent's own cache with it; the live cache would name a manifest that
// was never saved.
func TestPrefetchWithSavedMetadata(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t)
	first := []byte(`{"updates":[],"migrations":{"(0.1.0, 0.2.0)":["migrate_v0.2.0_a.toml"],"(0.2.0, 0.3.0)":[]}}`)
	if _, err := f.repo.AddTargetBytes(manifest.TargetName, first); err != nil {
		t.Fatal(err)
	}
	if _, err := f.repo.AddTargetBytes("migrate_v0.2.0_a.toml", []byte("# a\n")); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Minute)
	f.commit(true, nil)
	r, err := f.refresh(f.client())
	if err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(t.TempDir(), "migrations")
	meta, targets := filepath.Join(saved, "metadata"), filepath.Join(saved, "targets")
	names, err := r.Prefetch(ctx, manifest.MustParseVersion("0.3.0"), manifest.MustParseVersion("0.1.0"), targets)
	if err != nil || !reflect.DeepEqual(names, []string{"migrate_v0.2.0_a.toml"}) {
		t.Fatalf("Prefetch = %q, %v", names, err)
	}
	if err := r.SaveMetadata(meta); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Prefetch(ctx, manifest.MustParseVersion("0.1.0"), manifest.MustParseVersion("0.4.0"), targets); !errors.Is(err, manifest.ErrMissingMigration) {
		t.Fatalf("Prefetch without a chain = %v, want ErrMissingMigration", err)
	}

	// The repository publishes a new manifest; the agent refreshes again.
	if _, err := f.repo.AddTargetBytes(manifest.TargetName, []byte(`{"updates":[],"migrations":{}}`)); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Minute)
	f.commit(true, nil)
	if _, err := f.refresh(f.client()); err != nil {
		t.Fatal(err)
	}

	offline := func(cache string) *Client {
		c, err := New(Config{MetadataURL: "file:///nonexistent", TargetsURL: "file://" + targets, TrustedRoot: f.rootJSON, CacheDir: cache})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	live, err := offline(f.cacheDir).Cached()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := live.Manifest(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("manifest of the live cache = %v, want ErrNotFound (it was never saved)", err)
	}
	r2, err := offline(meta).Cached()
	if err != nil {
		t.Fatal(err)
	}
	m, err := r2.Manifest(ctx)
	if err != nil || len(m.Migrations) != 2 {
		t.Fatalf("saved manifest = %+v, %v", m, err)
	}
	var b bytes.Buffer
	if err := r2.Download(ctx, "migrate_v0.2.0_a.toml", &b); err != nil || b.String() != "# a\n" {
		t.Fatalf("saved migration = %q, %v", b.String(), err)
	}
	entries, _ := os.ReadDir(targets)
	if len(entries) != 2 {
		t.Errorf("saved targets %v, want the manifest and one migration", entries)
	}
	// A later update's prefetch leaves only what it needs.
	if names, err := r.Prefetch(ctx, manifest.MustParseVersion("0.2.0"), manifest.MustParseVersion("0.3.0"), targets); err != nil || len(names) != 0 {
		t.Fatalf("Prefetch 0.2.0 to 0.3.0 = %q, %v", names, err)
	}
	if entries, _ := os.ReadDir(targets); len(entries) != 1 || !strings.HasSuffix(entries[0].Name(), "."+manifest.TargetName) {
		t.Errorf("saved targets after another update %v, want the manifest alone", entries)
	}
}
