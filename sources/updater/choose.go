package updater

import (
	"fmt"
	"slices"
	"time"

	"github.com/petrel-os/petrel/sources/manifest"
)

// Host is what the running host is.
type Host struct {
	Variant, Arch string
	Version       manifest.Version
}

// Policy is the host's update settings (settings.updates) and the time.
type Policy struct {
	// VersionLock is "latest" (or empty) or the version to run, with or
	// without a leading "v".
	VersionLock string
	// IgnoreWaves makes every update ready at once.
	IgnoreWaves bool
	// Seed places the host in the waves, in [0, waves.MaxSeed).
	Seed uint32
	Now  time.Time
}

// Applicable returns the updates of the host's variant and arch that are
// allowed (version at or below max_version) and ready for the host's seed
// (or all, with IgnoreWaves), newest first.
func Applicable(m *manifest.Manifest, h Host, p Policy) []manifest.Update {
	var us []manifest.Update
	for _, u := range m.Updates {
		if u.Variant == h.Variant && u.Arch == h.Arch && u.Version.Compare(u.MaxVersion) <= 0 &&
			(p.IgnoreWaves || u.Waves.Ready(p.Seed, p.Now)) {
			us = append(us, u)
		}
	}
	slices.SortStableFunc(us, func(a, b manifest.Update) int { return b.Version.Compare(a.Version) })
	return us
}

// Choose picks the update the host should move to, or nil when it should
// stay, as upstream does. With a version lock it is the locked version if
// it is applicable and not the running one. Otherwise it is the newest
// applicable update above the running version, or, when the running
// version is above max_version (a release was pulled), the newest
// applicable one: a downgrade.
func Choose(m *manifest.Manifest, h Host, p Policy) (*manifest.Update, error) {
	us := Applicable(m, h, p)
	if p.VersionLock != "" && p.VersionLock != "latest" {
		lock, err := manifest.ParseVersion(p.VersionLock)
		if err != nil {
			return nil, fmt.Errorf("version-lock %q: expected \"latest\" or a version: %w", p.VersionLock, err)
		}
		if lock.Compare(h.Version) == 0 {
			return nil, nil
		}
		for i := range us {
			if us[i].Version.Compare(lock) == 0 {
				return &us[i], nil
			}
		}
		return nil, nil
	}
	for i := range us {
		if h.Version.Less(us[i].Version) || us[i].MaxVersion.Less(h.Version) {
			return &us[i], nil
		}
	}
	return nil, nil
}
