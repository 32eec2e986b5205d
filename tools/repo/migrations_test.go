package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/migration"
	"github.com/petrel-os/petrel/sources/tufrepo"
	"github.com/petrel-os/petrel/sources/updater"
)

// TestPublishMigrations: a release's migrations become signed targets
// and its steps the manifest's migrations map, which a host then reads
// through its verified cache (Prefetch, then the migrator's TUFSource).
// A release that hosts of a published version could not migrate to, a
// changed migration and a changed step are refused, leaving the
// repository as it was.
func TestPublishMigrations(t *testing.T) {
	e := newEnv(t)
	v := manifest.MustParseVersion
	e.migrations = nil
	if _, err := e.publish("0.1.0", "aaaa1111"); err != nil {
		t.Fatal(err)
	}
	ts, targets := tufrepoTimestamp(t, e.opts.Dir), targetFiles(t, e.opts.Dir)

	// No step from 0.1.0 to 0.2.0: hosts on 0.1.0 would fail at boot.
	e.opts.Now = t0.Add(time.Hour)
	_, err := e.publish("0.2.0", "cccc3333")
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(),
		"hosts on 0.1.0 could not move their settings to 0.2.0: missing migration: no step from 0.1.0 towards 0.2.0 in the migrations map") {
		t.Fatalf("Publish without a step = %v", err)
	}
	if tufrepoTimestamp(t, e.opts.Dir) != ts || !reflect.DeepEqual(targetFiles(t, e.opts.Dir), targets) {
		t.Fatal("a refused publication changed the repository")
	}

	mig := filepath.Join(e.tmp, "rename.toml")
	content := "[[operation]]\nkind = \"move\"\nfrom = \"settings.greeting\"\nto = \"settings.motd\"\n"
	if err := os.WriteFile(mig, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	step := manifest.Span{From: v("0.1.0"), To: v("0.2.0")}
	e.migrations = map[manifest.Span][]Migration{step: {{Target: "migrate_v0.2.0_rename.toml", Path: mig}}}
	if _, err := e.publish("0.2.0", "cccc3333"); err != nil {
		t.Fatal(err)
	}
	if rep, err := e.validate(e.opts.Now); err != nil || len(rep.Targets) != 8 {
		t.Fatalf("validate: %+v, %v", rep, err)
	}

	// A host on 0.1.0 refreshes, prefetches and reads the migration.
	root, _, _ := e.keys.Root()
	md, tg, _ := Locations(e.opts.Dir)
	cache := filepath.Join(e.tmp, "host-metadata")
	c, err := updater.New(updater.Config{MetadataURL: md, TargetsURL: tg, TrustedRoot: root, CacheDir: cache,
		Now: func() time.Time { return e.opts.Now }})
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	saved := filepath.Join(e.tmp, "host-migrations")
	names, err := r.Prefetch(context.Background(), v("0.1.0"), v("0.2.0"), saved)
	if err != nil || !reflect.DeepEqual(names, []string{"migrate_v0.2.0_rename.toml"}) {
		t.Fatalf("Prefetch = %q, %v", names, err)
	}
	src := &migration.TUFSource{Config: updater.Config{MetadataURL: "file://" + cache, TargetsURL: "file://" + saved,
		TrustedRoot: root, CacheDir: cache}}
	m, err := src.Manifest(context.Background())
	if err != nil || !reflect.DeepEqual(m.Migrations[step], []string{"migrate_v0.2.0_rename.toml"}) {
		t.Fatalf("host manifest migrations = %v, %v", m, err)
	}
	if got, err := src.Migration(context.Background(), "migrate_v0.2.0_rename.toml"); err != nil || string(got) != content {
		t.Fatalf("host reads %q, %v", got, err)
	}

	// Publishing 0.2.0 again changes nothing.
	ts = tufrepoTimestamp(t, e.opts.Dir)
	if res, err := e.publish("0.2.0", "cccc3333"); err != nil || !res.Already || tufrepoTimestamp(t, e.opts.Dir) != ts {
		t.Fatalf("Publish again = %+v, %v", res, err)
	}
	// A published migration or step never changes.
	e.opts.Now = t0.Add(2 * time.Hour)
	next := manifest.Span{From: v("0.2.0"), To: v("0.3.0")}
	if err := os.WriteFile(mig, []byte(content+"# changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.migrations[next] = nil
	if _, err := e.publish("0.3.0", "dddd4444"); !errors.Is(err, ErrPublished) ||
		!strings.Contains(err.Error(), "migration migrate_v0.2.0_rename.toml is published with sha256 ") {
		t.Fatalf("Publish with a changed migration = %v", err)
	}
	if err := os.WriteFile(mig, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	e.migrations[step] = nil
	if _, err := e.publish("0.3.0", "dddd4444"); !errors.Is(err, ErrPublished) || !strings.Contains(err.Error(),
		`the step (0.1.0, 0.2.0) is published with migrations ["migrate_v0.2.0_rename.toml"], Twoliter.toml lists []`) {
		t.Fatalf("Publish with a changed step = %v", err)
	}
	if tufrepoTimestamp(t, e.opts.Dir) != ts {
		t.Fatal("a refused publication changed the repository")
	}
}

// targetFiles lists the repository's target files.
func targetFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, tufrepo.TargetsDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}
