package migration

import (
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/manifest"
)

func TestCurrentModel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key, err string
	}{
		{"settings", ""},
		{"settings.motd", ""},
		{"settings.network", ""},
		{`settings.kernel.sysctl."net.ipv4.ip_forward"`, ""},
		{"settings.host-containers.admin.enabled", ""},
		{"settings.bogus", "settings.bogus: unknown setting (expected one of "},
		{"settings.motd.x", "settings.motd: expected a string, got table"},
		{"settings.network.nope", "settings.network.nope: unknown setting (expected one of hostname, hosts, https-proxy, no-proxy)"},
		{"services.motd", "services.motd is not below settings"},
	} {
		err := CurrentModel{}.Known(datastore.MustKey(datastore.DataKey, tc.key))
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Known(%s) = %v, want %q", tc.key, err, tc.err)
		}
	}
}

// history is a release chain 0.1.0 → 0.2.0 → 0.3.0 (current): 0.2.0
// moves settings.old-motd to settings.motd and adds settings.ntp, 0.3.0
// removes settings.legacy.
func history(t *testing.T) History {
	v := manifest.MustParseVersion
	return History{Current: v("0.3.0"), Model: CurrentModel{}, Steps: []Step{
		{Span: manifest.Span{From: v("0.2.0"), To: v("0.3.0")}, Migrations: []*Migration{
			mustParse(t, "m3", "[[operation]]\nkind = \"remove-settings\"\nkeys = [\"settings.legacy\"]\n")}},
		{Span: manifest.Span{From: v("0.1.0"), To: v("0.2.0")}, Migrations: []*Migration{
			mustParse(t, "m2", "[[operation]]\nkind = \"move\"\nfrom = \"settings.old-motd\"\nto = \"settings.motd\"\n"+
				"[[operation]]\nkind = \"add-settings\"\nkeys = [\"settings.ntp\"]\n")}},
	}}
}

func TestHistory(t *testing.T) {
	t.Parallel()
	h := history(t)
	for _, tc := range []struct {
		version, key, err string
	}{
		{"0.3.0", "settings.motd", ""},
		{"0.3.0", "settings.legacy", "settings.legacy: unknown setting"},
		{"0.2.0", "settings.legacy.x", ""},
		{"0.2.0", "settings.ntp.time-servers", ""},
		{"0.2.0", "settings.old-motd", "settings.old-motd: unknown setting (expected one of"},
		{"0.1.0", "settings.old-motd", ""},
		{"0.1.0", "settings.motd", "settings.motd comes with m2 operation[0] (move) at 0.2.0"},
		{"0.1.0", "settings.ntp.time-servers", "settings.ntp.time-servers comes with m2 operation[1] (add-settings) at 0.2.0"},
		{"0.1.0", "settings.network.hostname", ""},
		{"0.1.0", "settings.bogus", "settings.bogus: unknown setting (expected one of aws, boot, "},
		{"0.4.0", "settings.motd", "no settings model of 0.4.0: the release is 0.3.0"},
		{"0.0.1", "settings.motd", "no settings model of 0.0.1: missing migration: no step from 0.0.1 towards 0.3.0"},
	} {
		err := h.Known(manifest.MustParseVersion(tc.version), datastore.MustKey(datastore.DataKey, tc.key))
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Known(%s, %s) = %v, want %q", tc.version, tc.key, err, tc.err)
		}
	}
}

func TestCheckModel(t *testing.T) {
	t.Parallel()
	h := history(t)
	span := manifest.Span{From: manifest.MustParseVersion("0.2.0"), To: manifest.MustParseVersion("0.3.0")}
	good := mustParse(t, "good.toml", `[[operation]]
kind = "replace-value"
key = "settings.motd"
old = "a"
new = "b"
[[operation]]
kind = "add-metadata"
key = "services.motd"
meta = "m"
value = "x"`)
	if err := CheckModel(good, span, h); err != nil {
		t.Fatalf("CheckModel(good) = %v", err)
	}
	bad := mustParse(t, "bad.toml", `[[operation]]
kind = "move"
from = "settings.motd"
to = "settings.motd-text"
[[operation]]
kind = "add-settings"
keys = ["settings.network.dns"]`)
	err := CheckModel(bad, span, h)
	want := []string{
		"bad.toml: line 1: operation[0] (move).to: unknown setting: settings.motd-text is not a setting of the model of 0.3.0: settings.motd-text: unknown setting (expected one of aws, ",
		"bad.toml: line 5: operation[1] (add-settings).keys[0]: unknown setting: settings.network.dns is not a setting of the model of 0.3.0: settings.network.dns: unknown setting (expected one of hostname, hosts, https-proxy, no-proxy)",
	}
	if err == nil || len(strings.Split(err.Error(), "\n")) != 2 {
		t.Fatalf("CheckModel(bad) = %v, want 2 problems", err)
	}
	for i, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, want[i]) {
			t.Errorf("problem %d = %q, want it to start with %q", i, line, want[i])
		}
	}
}
