package project

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/migration"
)

// MigrationsDir holds the settings migrations, one directory per release
// that they lead to: MigrationsDir/v<TO>/<name>.toml.
const MigrationsDir = "sources/migration/migrations"

// MigrationStep is one step of the release chain with its migrations,
// loaded and checked.
type MigrationStep struct {
	Span  manifest.Span
	Files []MigrationFile
}

// MigrationFile is one listed migration.
type MigrationFile struct {
	// Name as listed in Twoliter.toml.
	Name string
	// Path is the absolute path of the file.
	Path string
	// Target is its name in the repository and the manifest.
	Target    string
	Migration *migration.Migration
}

var migrationName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// TargetName is the repository name of migration name leading to
// version to: migrate_v<TO>_<name>.toml (upstream's
// migrate_v<TO>_<name>.lz4).
func TargetName(to manifest.Version, name string) string {
	return "migrate_v" + to.String() + "_" + name + ".toml"
}

// loadMigrations reads and checks the [migrations] table of Twoliter.toml
// and the files it lists: each key a step "(FROM, TO)" going up, each
// name a file MigrationsDir/v<TO>/<name>.toml that parses, uses only
// registered functions and touches only settings the model of its
// versions knows; every version of the table reaches release-version
// with upstream's chain rule, none is above it; and every file under
// MigrationsDir is listed.
func (l *loader) loadMigrations() {
	const file = "Twoliter.toml"
	m := &l.p.Manifest
	release, err := manifest.ParseVersion(m.ReleaseVersion)
	if err != nil {
		return // reported with release-version
	}
	spans := manifest.Migrations{}
	listed := map[string]bool{}
	for _, key := range sortedKeys(m.Migrations) {
		field := fmt.Sprintf("migrations.%q", key)
		span, err := manifest.ParseSpan(key)
		if err != nil {
			l.probs.addf(file, "%s: %v", field, err)
			continue
		}
		switch {
		case !span.From.Less(span.To):
			l.probs.addf(file, "%s: a step goes up: %s is not below %s", field, span.From, span.To)
			continue
		case release.Less(span.To):
			l.probs.addf(file, "%s: %s is above release-version %s", field, span.To, release)
			continue
		case span.From.Pre != "" || span.To.Pre != "" || span.From.Build != "" || span.To.Build != "":
			l.probs.addf(file, "%s: versions of a step are X.Y.Z (datastore versions have no pre-release or build)", field)
			continue
		}
		if _, dup := spans[span]; dup {
			l.probs.addf(file, "%s: the step %s is listed twice", field, span)
			continue
		}
		step := MigrationStep{Span: span}
		for i, name := range m.Migrations[key] {
			rel := path.Join(MigrationsDir, "v"+span.To.String(), name+".toml")
			switch {
			case !migrationName.MatchString(name):
				l.probs.addf(file, "%s[%d]: expected a name of lower-case letters, digits and '-' (the file %s/v%s/<name>.toml), got %q",
					field, i, MigrationsDir, span.To, name)
				continue
			case listed[rel]:
				l.probs.addf(file, "%s[%d]: %s is listed twice", field, i, rel)
				continue
			}
			listed[rel] = true
			data, ok := l.read(rel)
			if !ok {
				continue
			}
			mig, err := migration.Parse(rel, data)
			if err == nil {
				err = mig.Check(migration.Builtins())
			}
			if err != nil {
				l.addMigrationError(err)
				continue
			}
			step.Files = append(step.Files, MigrationFile{Name: name, Path: filepath.Join(l.p.Root, filepath.FromSlash(rel)),
				Target: TargetName(span.To, name), Migration: mig})
		}
		spans[span] = nil
		l.p.Migrations = append(l.p.Migrations, step)
	}
	slices.SortFunc(l.p.Migrations, func(a, b MigrationStep) int {
		return cmp.Or(a.Span.From.Compare(b.Span.From), a.Span.To.Compare(b.Span.To))
	})
	l.checkChain(spans, release)
	l.checkModels(release)
	l.checkUnlisted(listed)
}

// addMigrationError records each problem of a migration file.
func (l *loader) addMigrationError(err error) {
	var e *migration.Error
	if !errors.As(err, &e) {
		l.probs.add(err)
		return
	}
	for _, p := range e.Problems {
		l.probs.add(fmt.Errorf("%s: %s", e.File, p))
	}
}

// checkChain refuses a gap: from every version of the table, hosts must
// reach the release (and so come back from it) with upstream's rule.
func (l *loader) checkChain(spans manifest.Migrations, release manifest.Version) {
	seen := map[string]bool{}
	var versions []manifest.Version
	for s := range spans {
		for _, v := range []manifest.Version{s.From, s.To} {
			if !seen[v.String()] {
				seen[v.String()] = true
				versions = append(versions, v)
			}
		}
	}
	slices.SortFunc(versions, manifest.Version.Compare)
	for _, v := range versions {
		if v.Compare(release) == 0 {
			continue
		}
		if _, err := spans.Path(v, release); err != nil {
			l.probs.addf("Twoliter.toml", "migrations: hosts on %s cannot reach release-version %s: %v (list every step from the oldest supported release, with [] when nothing changes)",
				v, release, err)
			return // one gap breaks the chain for every version below it
		}
	}
}

// checkModels checks every migration against the settings model of its
// versions.
func (l *loader) checkModels(release manifest.Version) {
	h := migration.History{Current: release, Model: migration.CurrentModel{}}
	for _, s := range l.p.Migrations {
		st := migration.Step{Span: s.Span}
		for _, f := range s.Files {
			st.Migrations = append(st.Migrations, f.Migration)
		}
		h.Steps = append(h.Steps, st)
	}
	for _, s := range l.p.Migrations {
		for _, f := range s.Files {
			if err := migration.CheckModel(f.Migration, s.Span, h); err != nil {
				l.addMigrationError(err)
			}
		}
	}
}

// checkUnlisted refuses a migration file that Twoliter.toml does not
// list: it would never ship.
func (l *loader) checkUnlisted(listed map[string]bool) {
	root := filepath.Join(l.p.Root, filepath.FromSlash(MigrationsDir))
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".toml") {
			return nil
		}
		rel, _ := filepath.Rel(l.p.Root, p)
		if rel = filepath.ToSlash(rel); !listed[rel] {
			l.probs.addf(rel, "not listed in Twoliter.toml [migrations]: it would never ship")
		}
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		l.probs.add(fmt.Errorf("list %s: %w", MigrationsDir, err))
	}
}

// MigrationsMap returns the steps as the manifest lists them: each step's
// target names, in order.
func (p *Project) MigrationsMap() manifest.Migrations {
	m := manifest.Migrations{}
	for _, s := range p.Migrations {
		names := []string{}
		for _, f := range s.Files {
			names = append(names, f.Target)
		}
		m[s.Span] = names
	}
	return m
}
