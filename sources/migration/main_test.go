package migration

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/tufrepo"
	"github.com/petrel-os/petrel/sources/updater"
)

// hostFiles is what a host has after its update agent refreshed the
// repository and prefetched the migrations: the shipped root, the
// metadata cache and the migration directory.
type hostFiles struct{ root, cache, migrations string }

// signedRepo publishes the test chain's manifest and migrations in a
// real TUF repository (ed25519 keys, consistent snapshots), refreshes it
// as the update agent does, and prefetches the migrations between from
// and to.
func signedRepo(t *testing.T, from, to string) hostFiles {
	t.Helper()
	dir := t.TempDir()
	keys, err := tufrepo.NewKeys()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rootJSON, err := tufrepo.NewSignedRoot(keys, now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	repo, err := tufrepo.Create(dir, rootJSON)
	if err != nil {
		t.Fatal(err)
	}
	src := sourceDir(t, nil)
	for _, name := range []string{"manifest.json", "migrate_v1.1.0_updates.toml", "migrate_v2.0.0_kernel.toml", "migrate_v2.0.0_proxy.toml"} {
		if _, err := repo.AddTarget(name, filepath.Join(src, name)); err != nil {
			t.Fatal(err)
		}
	}
	life := map[string]time.Duration{metadata.TARGETS: time.Hour, metadata.SNAPSHOT: time.Hour, metadata.TIMESTAMP: time.Hour}
	if err := repo.Commit(tufrepo.Commit{Now: now, Expires: life, Keys: keys, Targets: true}); err != nil {
		t.Fatal(err)
	}
	h := hostFiles{root: filepath.Join(t.TempDir(), "root.json"), cache: filepath.Join(t.TempDir(), "metadata"),
		migrations: filepath.Join(t.TempDir(), "migrations")}
	if err := os.WriteFile(h.root, rootJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := updater.New(updater.Config{MetadataURL: "file://" + filepath.Join(dir, tufrepo.MetadataDir),
		TargetsURL: "file://" + filepath.Join(dir, tufrepo.TargetsDir), TrustedRoot: rootJSON, CacheDir: h.cache})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	names, err := r.Prefetch(context.Background(), manifest.MustParseVersion(from), manifest.MustParseVersion(to), h.migrations)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3; len(names) != want {
		t.Fatalf("Prefetch = %q, want %d migrations", names, want)
	}
	return h
}

func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestMainSigned runs the agent as the host's unit does: the manifest
// and the migrations come from the verified TUF cache and the prefetched
// files, the version from os-release; then back down with
// --migrate-to-version.
func TestMainSigned(t *testing.T) {
	t.Parallel()
	h := signedRepo(t, "1.0.0", "2.0.0")
	base := t.TempDir()
	newDatastore(t, base, "1.0.0", parseData(t, baseData))
	osRelease := filepath.Join(t.TempDir(), "os-release")
	if err := os.WriteFile(osRelease, []byte("NAME=Petrel\nVERSION_ID=\"2.0.0\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--datastore-path", filepath.Join(base, "current"), "--root-path", h.root,
		"--metadata-directory", h.cache, "--migration-directory", h.migrations}
	code, out, errs := runMain(t, append(flags, "--migrate-to-version-from-os-release", "--os-release", osRelease)...)
	if code != 0 || !strings.HasPrefix(out, "datastore migrated forward from 1.0.0 to 2.0.0 with 3 migrations into v2.0.0_") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if !strings.Contains(errs, "component=migrator") || !strings.Contains(errs, `msg="datastore migrated"`) {
		t.Errorf("log: %q", errs)
	}
	if diff := Diff(migrated(t), readDatastore(t, base)); diff != "" {
		t.Fatal(diff)
	}
	code, out, errs = runMain(t, append(flags, "--migrate-to-version", "2.0.0")...)
	if code != 0 || out != "datastore already at 2.0.0\n" {
		t.Fatalf("again: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	code, out, errs = runMain(t, append(flags, "--migrate-to-version", "1.0.0")...)
	if code != 0 || !strings.HasPrefix(out, "datastore migrated backward from 2.0.0 to 1.0.0 with 3 migrations") {
		t.Fatalf("back: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if diff := Diff(parseData(t, baseData), readDatastore(t, base)); diff != "" {
		t.Fatal(diff)
	}
}

// TestMainRefusesTampering: a migration file changed on the host's disk
// fails its signed hash; the agent fails and the datastore stays.
func TestMainRefusesTampering(t *testing.T) {
	t.Parallel()
	h := signedRepo(t, "1.0.0", "2.0.0")
	files, err := filepath.Glob(filepath.Join(h.migrations, "*.migrate_v2.0.0_proxy.toml"))
	if err != nil || len(files) != 1 {
		t.Fatalf("prefetched proxy migration: %v, %v", files, err)
	}
	orig, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	evil := "[[operation]]\nkind = \"remove-settings\"\nkeys = [\"settings\"]\n#"
	evil += strings.Repeat("#", len(orig)-len(evil)) // the signed length, another hash
	if err := os.WriteFile(files[0], []byte(evil), 0o600); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	newDatastore(t, base, "1.0.0", parseData(t, baseData))
	before, _ := datastore.ReadChain(base)
	code, _, errs := runMain(t, "--datastore-path", filepath.Join(base, "current"), "--root-path", h.root,
		"--metadata-directory", h.cache, "--migration-directory", h.migrations, "--migrate-to-version", "2.0.0")
	if code != 1 || !strings.Contains(errs, "read migration migrate_v2.0.0_proxy.toml: download migrate_v2.0.0_proxy.toml: migrate_v2.0.0_proxy.toml: sha256 mismatch: signed ") {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	if after, _ := datastore.ReadChain(base); after != before {
		t.Fatalf("chain moved: %+v", after)
	}
}

func TestMainUsage(t *testing.T) {
	t.Parallel()
	noStore := filepath.Join(t.TempDir(), "datastore", "current")
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--datastore-path", noStore}, 2, "at least one of the flags in the group [migrate-to-version migrate-to-version-from-os-release] is required"},
		{[]string{"--datastore-path", noStore, "--migrate-to-version", "1.0"}, 2, `version to migrate to: version "1.0": expected MAJOR.MINOR.PATCH`},
		{[]string{"--datastore-path", noStore, "--migrate-to-version", "1.0.0", "--migrate-to-version-from-os-release"}, 2, "none of the others can be"},
		{[]string{"--datastore-path", noStore, "--migrate-to-version-from-os-release", "--os-release", "/nonexistent"}, 1, "read os-release"},
		// A first boot: no datastore, no root, no cache needed.
		{[]string{"--datastore-path", noStore, "--migrate-to-version", "1.0.0", "--root-path", "/nonexistent"}, 0, "no datastore yet: nothing to migrate"},
		{[]string{"--help"}, 0, "Usage:\n  migrator [flags]"},
	} {
		code, out, errs := runMain(t, tc.args...)
		if code != tc.code || !strings.Contains(out+errs, tc.out) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d and %q", tc.args, code, out, errs, tc.code, tc.out)
		}
	}
	// A datastore to migrate, but no trusted root.
	base := t.TempDir()
	newDatastore(t, base, "1.0.0", parseData(t, baseData))
	code, _, errs := runMain(t, "--datastore-path", filepath.Join(base, "current"), "--migrate-to-version", "2.0.0", "--root-path", "/nonexistent/root.json")
	if code != 1 || !strings.Contains(errs, "read manifest: read trusted root /nonexistent/root.json: open /nonexistent/root.json: no such file or directory") {
		t.Fatalf("no root: exit %d, stderr %q", code, errs)
	}
}
