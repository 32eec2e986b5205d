package updater

import (
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/waves"
)

func TestChoose(t *testing.T) {
	v := manifest.MustParseVersion
	now := time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)
	later, _ := waves.DefaultPlan().Schedule(now.Add(-2 * 24 * time.Hour)) // two days into the default plan
	mk := func(variant, arch, ver, maxV string, s waves.Schedule) manifest.Update {
		return manifest.Update{Variant: variant, Arch: arch, Version: v(ver), MaxVersion: v(maxV), Waves: s}
	}
	m := &manifest.Manifest{Updates: []manifest.Update{
		mk("metal-dev", "x86_64", "1.0.0", "1.2.0", nil),
		mk("metal-dev", "x86_64", "1.1.0", "1.2.0", nil),
		mk("metal-dev", "x86_64", "1.2.0", "1.2.0", later),
		mk("metal-dev", "aarch64", "1.3.0", "1.3.0", nil),
		mk("aws-dev", "x86_64", "1.4.0", "1.4.0", nil),
	}}
	pulled := &manifest.Manifest{Updates: []manifest.Update{
		mk("metal-dev", "x86_64", "1.0.0", "1.1.0", nil),
		mk("metal-dev", "x86_64", "1.1.0", "1.1.0", nil),
		mk("metal-dev", "x86_64", "1.2.0", "1.1.0", nil),
	}}
	for _, tc := range []struct {
		name    string
		m       *manifest.Manifest
		running string
		p       Policy
		want    string // "" = stay
	}{
		// Seed 1500 is in wave 6 (starts at 5 days): not ready yet.
		{"latest, not in wave yet", m, "1.0.0", Policy{Seed: 1500, Now: now}, "1.1.0"},
		// Seed 100 is in wave 2 (4 hours to 1 day): ready.
		{"latest, wave ready", m, "1.0.0", Policy{Seed: 100, Now: now}, "1.2.0"},
		{"ignore waves", m, "1.0.0", Policy{Seed: 1500, Now: now, IgnoreWaves: true}, "1.2.0"},
		{"up to date", m, "1.2.0", Policy{Seed: 100, Now: now}, ""},
		{"version lock older", m, "1.2.0", Policy{VersionLock: "1.0.0", Now: now}, "1.0.0"},
		{"version lock with v", m, "1.2.0", Policy{VersionLock: "v1.1.0", Now: now}, "1.1.0"},
		{"version lock on running", m, "1.1.0", Policy{VersionLock: "1.1.0", Now: now}, ""},
		{"version lock not published", m, "1.1.0", Policy{VersionLock: "1.9.0", Now: now}, ""},
		{"version lock not in wave", m, "1.1.0", Policy{VersionLock: "1.2.0", Seed: 1500, Now: now}, ""},
		{"pulled release: go back", pulled, "1.2.0", Policy{Now: now}, "1.1.0"},
		{"pulled release: stay below", pulled, "1.1.0", Policy{Now: now}, ""},
		{"other arch only", &manifest.Manifest{Updates: m.Updates[3:4]}, "1.0.0", Policy{Now: now}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := Choose(tc.m, Host{Variant: "metal-dev", Arch: "x86_64", Version: v(tc.running)}, tc.p)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if u != nil {
				got = u.Version.String()
			}
			if got != tc.want {
				t.Fatalf("Choose = %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := Choose(m, Host{Variant: "metal-dev", Arch: "x86_64", Version: v("1.0.0")}, Policy{VersionLock: "newest"}); err == nil ||
		!strings.Contains(err.Error(), `version-lock "newest": expected "latest" or a version`) {
		t.Fatalf("bad version lock: %v", err)
	}
}
