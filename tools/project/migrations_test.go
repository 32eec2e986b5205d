package project_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/migration"
	"github.com/petrel-os/petrel/sources/settings"
	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/project"
)

// twoliter returns the good fixture's Twoliter.toml at release with the
// given [migrations] lines.
func twoliter(t *testing.T, release, migrations string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "good", "Twoliter.toml"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(data), `release-version = "0.1.0"`, `release-version = "`+release+`"`, 1)
	return s + "\n[migrations]\n" + migrations
}

const (
	renameMotd = "[[operation]]\nkind = \"move\"\nfrom = \"settings.greeting\"\nto = \"settings.motd\"\n"
	addNTP     = "[[operation]]\nkind = \"add-settings\"\nkeys = [\"settings.ntp\"]\n"
	migDir     = "sources/migration/migrations/"
)

func TestLoadMigrations(t *testing.T) {
	t.Parallel()
	root := testkit.Copy(t, filepath.Join("testdata", "good"), map[string]string{
		"Twoliter.toml": twoliter(t, "0.3.0", `"(0.1.0, 0.2.0)" = ["rename-motd", "add-ntp"]
"(0.2.0, 0.3.0)" = []
"(0.1.0, 0.1.1)" = []
"(0.1.1, 0.2.0)" = []
`),
		migDir + "v0.2.0/rename-motd.toml": renameMotd,
		migDir + "v0.2.0/add-ntp.toml":     addNTP,
	})
	p, err := project.LoadManifests(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Migrations) != 4 || len(p.Migrations[1].Files) != 2 {
		t.Fatalf("Migrations = %+v", p.Migrations)
	}
	f := p.Migrations[1].Files[0]
	if f.Name != "rename-motd" || f.Target != "migrate_v0.2.0_rename-motd.toml" ||
		f.Path != filepath.Join(root, "sources", "migration", "migrations", "v0.2.0", "rename-motd.toml") || len(f.Migration.Operations) != 1 {
		t.Fatalf("first file = %+v", f)
	}
	v := manifest.MustParseVersion
	want := manifest.Migrations{
		{From: v("0.1.0"), To: v("0.1.1")}: {},
		{From: v("0.1.0"), To: v("0.2.0")}: {"migrate_v0.2.0_rename-motd.toml", "migrate_v0.2.0_add-ntp.toml"},
		{From: v("0.1.1"), To: v("0.2.0")}: {},
		{From: v("0.2.0"), To: v("0.3.0")}: {},
	}
	if got := p.MigrationsMap(); !reflect.DeepEqual(got, want) {
		t.Fatalf("MigrationsMap = %v", got)
	}
}

// TestLoadMigrationsRefused: each refusal names the file, the operation
// and the reason, and every problem is reported at once.
func TestLoadMigrationsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		table   string
		overlay map[string]string
		want    []string
	}{
		{"missing file", `"(0.1.0, 0.2.0)" = ["rename-motd", "gone"]` + "\n" + `"(0.2.0, 0.3.0)" = []`,
			map[string]string{migDir + "v0.2.0/rename-motd.toml": renameMotd},
			[]string{"sources/migration/migrations/v0.2.0/gone.toml: file does not exist"}},
		{"gap in the chain", `"(0.1.0, 0.2.0)" = []` + "\n" + `"(0.2.5, 0.3.0)" = []`, nil,
			[]string{"Twoliter.toml: migrations: hosts on 0.1.0 cannot reach release-version 0.3.0: missing migration: no step from 0.2.0 towards 0.3.0"}},
		{"release not reached", `"(0.1.0, 0.2.0)" = []`, nil,
			[]string{"Twoliter.toml: migrations: hosts on 0.1.0 cannot reach release-version 0.3.0: missing migration: no step from 0.2.0 towards 0.3.0"}},
		{"unknown setting", `"(0.2.0, 0.3.0)" = ["motd-text"]`,
			map[string]string{migDir + "v0.3.0/motd-text.toml": "[[operation]]\nkind = \"move\"\nfrom = \"settings.motd\"\nto = \"settings.motd-text\"\n"},
			[]string{"sources/migration/migrations/v0.3.0/motd-text.toml: line 1: operation[0] (move).to: unknown setting: settings.motd-text is not a setting of the model of 0.3.0: settings.motd-text: unknown setting (expected one of aws, "}},
		{"unknown setting of an older release", `"(0.1.0, 0.2.0)" = ["proxy"]` + "\n" + `"(0.2.0, 0.3.0)" = ["rename-motd"]`,
			map[string]string{
				migDir + "v0.2.0/proxy.toml":       "[[operation]]\nkind = \"replace-value\"\nkey = \"settings.motd\"\nold = \"a\"\nnew = \"b\"\n",
				migDir + "v0.3.0/rename-motd.toml": renameMotd,
			},
			[]string{"sources/migration/migrations/v0.2.0/proxy.toml: line 1: operation[0] (replace-value).key: unknown setting: settings.motd is not a setting of the model of 0.1.0: settings.motd comes with sources/migration/migrations/v0.3.0/rename-motd.toml operation[0] (move) at 0.3.0",
				"sources/migration/migrations/v0.2.0/proxy.toml: line 1: operation[0] (replace-value).key: unknown setting: settings.motd is not a setting of the model of 0.2.0: settings.motd comes with sources/migration/migrations/v0.3.0/rename-motd.toml operation[0] (move) at 0.3.0"}},
		{"lossy backward", `"(0.2.0, 0.3.0)" = ["lossy"]`,
			map[string]string{migDir + "v0.3.0/lossy.toml": "[[operation]]\nkind = \"replace-value\"\nkey = \"settings.motd\"\nmap = [{old = \"a\", new = \"c\"}, {old = \"b\", new = \"c\"}]\n"},
			[]string{`sources/migration/migrations/v0.3.0/lossy.toml: line 1: operation[0] (replace-value).map[1].new: lossy: "a" and "b" would both become "c", so backward could not tell which to restore`}},
		{"unparsable", `"(0.2.0, 0.3.0)" = ["bad"]`,
			map[string]string{migDir + "v0.3.0/bad.toml": "[[operation]]\nkind = \"rename\"\n"},
			[]string{`sources/migration/migrations/v0.3.0/bad.toml: line 1: operation[0].kind: unknown kind "rename" (expected one of `}},
		{"unknown function", `"(0.2.0, 0.3.0)" = ["fn"]`,
			map[string]string{migDir + "v0.3.0/fn.toml": "[[operation]]\nkind = \"function\"\nname = \"split-proxy\"\n"},
			[]string{`sources/migration/migrations/v0.3.0/fn.toml: line 1: operation[0] (function).name: unknown migration function "split-proxy" (registered: [])`}},
		{"unlisted file", `"(0.2.0, 0.3.0)" = []`,
			map[string]string{migDir + "v0.3.0/forgotten.toml": addNTP},
			[]string{"sources/migration/migrations/v0.3.0/forgotten.toml: not listed in Twoliter.toml [migrations]: it would never ship"}},
		{"bad table", `"(0.2.0 0.3.0)" = []` + "\n" + `"(0.3.0, 0.2.0)" = []` + "\n" + `"(0.2.0, 0.4.0)" = []` + "\n" + `"(0.2.0, 0.3.0)" = ["Bad_Name", "x", "x"]`,
			map[string]string{migDir + "v0.3.0/x.toml": addNTP},
			[]string{
				`Twoliter.toml: migrations."(0.2.0 0.3.0)": expected "(FROM, TO)" such as "(1.2.0, 1.3.0)", got "(0.2.0 0.3.0)"`,
				`Twoliter.toml: migrations."(0.2.0, 0.3.0)"[0]: expected a name of lower-case letters, digits and '-' (the file sources/migration/migrations/v0.3.0/<name>.toml), got "Bad_Name"`,
				`Twoliter.toml: migrations."(0.2.0, 0.3.0)"[2]: sources/migration/migrations/v0.3.0/x.toml is listed twice`,
				`Twoliter.toml: migrations."(0.2.0, 0.4.0)": 0.4.0 is above release-version 0.3.0`,
				`Twoliter.toml: migrations."(0.3.0, 0.2.0)": a step goes up: 0.3.0 is not below 0.2.0`,
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			overlay := map[string]string{"Twoliter.toml": twoliter(t, "0.3.0", tc.table+"\n")}
			for k, v := range tc.overlay {
				overlay[k] = v
			}
			root := testkit.Copy(t, filepath.Join("testdata", "good"), overlay)
			_, err := project.LoadManifests(context.Background(), root)
			wantProblems(t, err, tc.want)
		})
	}
}

// wantProblems checks that err is bad input listing exactly the problems
// that start with want, one a line.
func wantProblems(t *testing.T, err error, want []string) {
	t.Helper()
	if !errors.Is(err, project.ErrInvalidInput) {
		t.Errorf("errors.Is(%v, ErrInvalidInput) = false", err)
		if err == nil {
			return
		}
	}
	lines := strings.Split(err.Error(), "\n")
	for _, w := range want {
		found := false
		for _, l := range lines {
			found = found || strings.HasPrefix(l, w)
		}
		if !found {
			t.Errorf("error lacks %q; got:\n%v", w, err)
		}
	}
	if len(lines) != len(want) {
		t.Errorf("%d problems, want %d:\n%v", len(lines), len(want), err)
	}
}

// TestShippedMigrations: the repository's own migrations load and pass
// every check (as for every buildctl command), and each one runs forward
// and then backward over a datastore that storewolf fills from the
// shipped defaults (live services and metadata, settings pending in the
// launch transaction), giving it back exactly.
func TestShippedMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, err := project.LoadManifests(ctx, filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	defaults, err := settings.LoadDefaults(ctx, filepath.Join("..", "..", "sources", "settings", "defaults"))
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	if _, err := settings.Storewolf(ctx, settings.StorewolfConfig{Base: base, Version: p.Manifest.ReleaseVersion}, defaults); err != nil {
		t.Fatal(err)
	}
	read := func() *migration.Data {
		s, err := datastore.Open(ctx, filepath.Join(base, datastore.CurrentLink))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		d, err := migration.ReadData(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	orig := read()
	if len(orig.Live) == 0 || len(orig.Pending) == 0 || len(orig.Metadata) == 0 {
		t.Fatalf("the defaults datastore lacks live values, transactions or metadata: %d, %d, %d", len(orig.Live), len(orig.Pending), len(orig.Metadata))
	}
	n := 0
	for _, s := range p.Migrations {
		for _, f := range s.Files {
			n++
			d, saves := read(), migration.Saves{}
			ms := []*migration.Migration{f.Migration}
			if err := migration.Apply(d, saves, ms, migration.Forward, migration.Builtins()); err != nil {
				t.Errorf("%s forward: %v", f.Target, err)
				continue
			}
			if err := migration.Apply(d, saves, ms, migration.Backward, migration.Builtins()); err != nil {
				t.Errorf("%s backward: %v", f.Target, err)
				continue
			}
			if diff := migration.Diff(orig, d); diff != "" {
				t.Errorf("%s forward then backward: %s", f.Target, diff)
			}
		}
	}
	t.Logf("%d steps, %d migrations checked", len(p.Migrations), n)
}
