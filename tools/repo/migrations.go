package repo

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/tufrepo"
)

// migrationPlan is what a release adds to the repository's migrations:
// files to sign as targets and steps for the manifest's map.
type migrationPlan struct {
	files []Migration
	steps map[manifest.Span][]string
}

// planMigrations compares the release chain's migrations with what the
// repository has published, without writing anything. A published
// migration or step never changes: hosts may have run it, and its
// backward must stay the one they kept copies for.
func planMigrations(r *tufrepo.Repo, m *manifest.Manifest, rel Release) (migrationPlan, error) {
	plan := migrationPlan{steps: map[manifest.Span][]string{}}
	seen := map[string]bool{}
	for span, files := range rel.Migrations {
		names := make([]string, 0, len(files))
		for _, f := range files {
			names = append(names, f.Target)
			if seen[f.Target] {
				continue
			}
			seen[f.Target] = true
			_, sum, err := tufrepo.HashFile(f.Path)
			if err != nil {
				return plan, fmt.Errorf("%w: migration %s: %w", ErrInput, f.Target, err)
			}
			t := r.Targets.Signed.Targets[f.Target]
			if t == nil {
				plan.files = append(plan.files, f)
				continue
			}
			if have := hex.EncodeToString(t.Hashes["sha256"]); have != hex.EncodeToString(sum) {
				return plan, fmt.Errorf("%w: migration %s is published with sha256 %s, %s has %s: a published migration never "+
					"changes (add another migration)", ErrPublished, f.Target, have, f.Path, hex.EncodeToString(sum))
			}
		}
		have, ok := m.Migrations[span]
		switch {
		case !ok:
			plan.steps[span] = names
		case !slices.Equal(have, names):
			return plan, fmt.Errorf("%w: the step %s is published with migrations %q, Twoliter.toml lists %q: a published step never changes",
				ErrPublished, span, have, names)
		}
	}
	slices.SortFunc(plan.files, func(a, b Migration) int { return strings.Compare(a.Target, b.Target) })
	return plan, nil
}

// checkChains refuses a release that hosts of another published version
// of the variant and arch could not move their settings to (or back
// from): the migrations map must connect the versions, or the migrator
// of those hosts fails at boot and the update rolls back.
func checkChains(m *manifest.Manifest, variant, arch string, v manifest.Version) error {
	for _, u := range m.Updates {
		if u.Variant != variant || u.Arch != arch || u.Version.Compare(v) == 0 {
			continue
		}
		lower, higher := u.Version, v
		if higher.Less(lower) {
			lower, higher = higher, lower
		}
		if _, err := m.Migrations.Path(lower, higher); err != nil {
			return fmt.Errorf("%w: hosts on %s could not move their settings to %s: %w (list every step in Twoliter.toml [migrations], "+
				"with [] when nothing changes)", ErrInput, u.Version, v, err)
		}
	}
	return nil
}
