package migration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/manifest"
)

// Migrations of the test release chain 1.0.0 → 1.1.0 → 1.2.0 → 2.0.0,
// all fitting the real settings model.
const (
	migUpdates = `description = "new update server"
[[operation]]
kind = "replace-value"
key = "settings.updates.metadata-base-url"
old = "https://old.example/meta"
new = "https://new.example/meta"
[[operation]]
kind = "add-settings"
keys = ["settings.ntp"]
`
	migKernel = `[[operation]]
kind = "remove-settings"
keys = ["settings.kernel"]
[[operation]]
kind = "replace-metadata"
key = "settings.motd"
meta = "affected-services"
old = ["motd"]
new = ["motd", "issue"]
`
	migProxy = `[[operation]]
kind = "move"
from = "settings.network.https-proxy"
to = "settings.aws.profile"
`
	testManifest = `{"updates": [], "migrations": {
  "(1.0.0, 1.1.0)": ["migrate_v1.1.0_updates.toml"],
  "(1.1.0, 1.2.0)": [],
  "(1.2.0, 2.0.0)": ["migrate_v2.0.0_kernel.toml", "migrate_v2.0.0_proxy.toml"]}}`
)

// sourceDir writes the test chain's manifest and migrations into a
// directory, plus extra files.
func sourceDir(t testing.TB, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"manifest.json":               testManifest,
		"migrate_v1.1.0_updates.toml": migUpdates,
		"migrate_v2.0.0_kernel.toml":  migKernel,
		"migrate_v2.0.0_proxy.toml":   migProxy,
	}
	for k, v := range extra {
		files[k] = v
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// migrated is baseData after the chain from 1.0.0 to 2.0.0.
func migrated(t testing.TB) *Data {
	d := parseData(t, baseData)
	var ms []*Migration
	for _, f := range []struct{ name, text string }{
		{"migrate_v1.1.0_updates.toml", migUpdates}, {"migrate_v2.0.0_kernel.toml", migKernel}, {"migrate_v2.0.0_proxy.toml", migProxy},
	} {
		ms = append(ms, mustParse(t, f.name, f.text))
	}
	if err := Apply(d, Saves{}, ms, Forward, nil); err != nil {
		t.Fatal(err)
	}
	return d
}

func runTo(t testing.TB, base, src, version string) (Result, error) {
	t.Helper()
	return Run(context.Background(), Config{Base: base, To: manifest.MustParseVersion(version), Source: DirSource{Dir: src}})
}

// entries lists the names in base, sorted.
func entries(t testing.TB, base string) []string {
	t.Helper()
	es, err := os.ReadDir(base)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

var randomSuffix = regexp.MustCompile(`_[A-Za-z0-9]{16}$`)

// shape is entries with the random suffixes of directories replaced.
func shape(t testing.TB, base string) string {
	var out []string
	for _, e := range entries(t, base) {
		out = append(out, randomSuffix.ReplaceAllString(e, "_R"))
	}
	return strings.Join(out, " ")
}

// TestRunForwardAndBack migrates a datastore with live values, metadata
// and pending transactions from 1.0.0 to 2.0.0 through three migrations
// and an empty step, and back: the result of the downgrade holds the
// same files with the same bytes as the original.
func TestRunForwardAndBack(t *testing.T) {
	t.Parallel()
	base, src := t.TempDir(), sourceDir(t, nil)
	newDatastore(t, base, "1.0.0", parseData(t, baseData))
	orig, _ := datastore.ReadChain(base)
	origFiles := treeFiles(t, filepath.Join(base, orig.Dir))

	res, err := runTo(t, base, src, "2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"migrate_v1.1.0_updates.toml", "migrate_v2.0.0_kernel.toml", "migrate_v2.0.0_proxy.toml"}
	if res.From != "1.0.0" || res.To != "2.0.0" || res.Direction != Forward || !reflect.DeepEqual(res.Migrations, want) || res.Relinked {
		t.Fatalf("Run = %+v", res)
	}
	if diff := Diff(migrated(t), readDatastore(t, base)); diff != "" {
		t.Fatalf("after the upgrade: %s", diff)
	}
	c, _ := datastore.ReadChain(base)
	if c.Version != "2.0.0" || c.Dir != res.Dir || c.Dir == orig.Dir {
		t.Fatalf("chain after the upgrade = %+v", c)
	}
	if got := shape(t, base); got != "current v1 v1.0 v1.0.0 v1.0.0_R v2 v2.0 v2.0.0 v2.0.0_R" {
		t.Fatalf("base holds %s", got)
	}
	if files := treeFiles(t, filepath.Join(base, orig.Dir)); !reflect.DeepEqual(files, origFiles) {
		t.Fatal("the 1.0.0 datastore changed")
	}
	saves, err := ReadSaves(filepath.Join(base, c.Dir))
	if err != nil || len(saves["migrate_v2.0.0_kernel.toml"]) != 2 || len(saves["migrate_v1.1.0_updates.toml"]) != 2 {
		t.Fatalf("saves after the upgrade = %v, %v", saves, err)
	}
	if st, err := os.Stat(filepath.Join(base, c.Dir, SavesFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("saves file: %v, %v", st, err)
	}

	res, err = runTo(t, base, src, "1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	want = []string{"migrate_v2.0.0_proxy.toml", "migrate_v2.0.0_kernel.toml", "migrate_v1.1.0_updates.toml"}
	if res.Direction != Backward || !reflect.DeepEqual(res.Migrations, want) {
		t.Fatalf("Run back = %+v", res)
	}
	c, _ = datastore.ReadChain(base)
	if files := treeFiles(t, filepath.Join(base, c.Dir)); !reflect.DeepEqual(files, origFiles) {
		t.Fatalf("after the downgrade the files differ:\n%v\nwant\n%v", files, origFiles)
	}
	if diff := Diff(parseData(t, baseData), readDatastore(t, base)); diff != "" {
		t.Fatalf("after the downgrade: %s", diff)
	}
	if _, err := os.Stat(filepath.Join(base, c.Dir, SavesFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("saves file after the downgrade: %v", err)
	}
	// The original 1.0.0 directory is gone: the 1.0.0 link names the
	// new one, and 2.0.0 is the previous version.
	if got := shape(t, base); got != "current v1 v1.0 v1.0.0 v1.0.0_R v2 v2.0 v2.0.0 v2.0.0_R" || c.Dir == orig.Dir {
		t.Fatalf("base holds %s, current dir %s (original %s)", got, c.Dir, orig.Dir)
	}
}

// TestRunRelink: a step without migrations moves the links to the same
// directory.
func TestRunRelink(t *testing.T) {
	t.Parallel()
	base, src := t.TempDir(), sourceDir(t, nil)
	newDatastore(t, base, "1.1.0", parseData(t, baseData))
	before, _ := datastore.ReadChain(base)
	res, err := runTo(t, base, src, "1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	after, _ := datastore.ReadChain(base)
	if !res.Relinked || res.Migrations == nil || len(res.Migrations) != 0 || after.Dir != before.Dir || after.Version != "1.2.0" {
		t.Fatalf("Run = %+v, chain %+v", res, after)
	}
	if got := shape(t, base); got != "current v1 v1.1 v1.1.0 v1.1.0_R v1.2 v1.2.0" {
		t.Fatalf("base holds %s", got)
	}
	if diff := Diff(parseData(t, baseData), readDatastore(t, base)); diff != "" {
		t.Fatal(diff)
	}
}

func TestRunNothingToDo(t *testing.T) {
	t.Parallel()
	base := filepath.Join(t.TempDir(), "datastore")
	res, err := Run(context.Background(), Config{Base: base, To: manifest.MustParseVersion("1.0.0")})
	if err != nil || res.From != "" {
		t.Fatalf("first boot: %+v, %v", res, err)
	}
	base = t.TempDir()
	newDatastore(t, base, "1.0.0", parseData(t, baseData))
	// A directory left by an interrupted migration and a temporary link
	// go; the source is not read.
	if err := os.Mkdir(filepath.Join(base, "v1.1.0_AAAAAAAAAAAAAAAA"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("v1", filepath.Join(base, ".tmp-0123")); err != nil {
		t.Fatal(err)
	}
	res, err = Run(context.Background(), Config{Base: base, To: manifest.MustParseVersion("1.0.0")})
	if err != nil || res.From != "1.0.0" || res.To != "1.0.0" || len(res.Removed) != 2 {
		t.Fatalf("same version: %+v, %v", res, err)
	}
	if got := shape(t, base); got != "current v1 v1.0 v1.0.0 v1.0.0_R" {
		t.Fatalf("base holds %s", got)
	}
}

// TestRunFailureLeavesDatastore: whatever fails, current and the
// datastore it names are as before, and no new directory is left.
func TestRunFailureLeavesDatastore(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, to string
		extra    map[string]string
		prepare  func(t *testing.T, base string) func()
		want     string
	}{
		{name: "missing step", to: "3.0.0", want: "migrate datastore from 1.0.0 to 3.0.0: missing migration: no step from 2.0.0 towards 3.0.0"},
		{name: "missing file", to: "2.0.0", extra: map[string]string{"manifest.json": strings.Replace(testManifest, "proxy.toml", "gone.toml", 1)},
			want: "read " + "SRC/migrate_v2.0.0_gone.toml: open SRC/migrate_v2.0.0_gone.toml: no such file or directory"},
		{name: "bad file", to: "2.0.0", extra: map[string]string{"migrate_v2.0.0_proxy.toml": "[[operation]]\nkind = \"move\"\nfrom = \"settings.a\"\n"},
			want: "migrate_v2.0.0_proxy.toml: line 1: operation[0] (move).to: missing"},
		{name: "unknown function", to: "2.0.0", extra: map[string]string{"migrate_v2.0.0_proxy.toml": "[[operation]]\nkind = \"function\"\nname = \"split\"\n"},
			want: `migrate_v2.0.0_proxy.toml: line 1: operation[0] (function).name: unknown migration function "split" (registered: [])`},
		{name: "model rejects the result", to: "2.0.0",
			extra: map[string]string{"migrate_v2.0.0_proxy.toml": "[[operation]]\nkind = \"move\"\nfrom = \"settings.network.https-proxy\"\nto = \"settings.network.proxy\"\n"},
			want:  `the migrated settings do not fit the settings model: live settings: settings.network.proxy: unknown setting (expected one of hostname, hosts, https-proxy, no-proxy)`},
		{name: "pending settings rejected", to: "2.0.0",
			extra: map[string]string{"migrate_v2.0.0_proxy.toml": "[[operation]]\nkind = \"move\"\nfrom = \"settings.motd\"\nto = \"settings.greeting\"\n"},
			want:  `settings pending in transaction "petrel-launch": settings.greeting: unknown setting`},
		// Found only when the new directory is written: it is removed.
		{name: "conflict outside settings", to: "2.0.0",
			extra: map[string]string{"migrate_v2.0.0_proxy.toml": "[[operation]]\nkind = \"move\"\nfrom = \"services.motd\"\nto = \"configuration-files.motd.template-path.x\"\n"},
			want:  "live: key conflicts with an existing key: configuration-files.motd.template-path is a value and a parent of configuration-files.motd.template-path.x.restart-commands"},
		{name: "datastore in use", to: "2.0.0", prepare: func(t *testing.T, base string) func() {
			s, err := datastore.Open(context.Background(), filepath.Join(base, "current"))
			if err != nil {
				t.Fatal(err)
			}
			return func() { s.Close() }
		}, want: "datastore locked by another process"},
		{name: "unreadable saves", to: "2.0.0", prepare: func(t *testing.T, base string) func() {
			c, _ := datastore.ReadChain(base)
			if err := os.WriteFile(filepath.Join(base, c.Dir, SavesFile), []byte(`{"format": 9}`), 0o600); err != nil {
				t.Fatal(err)
			}
			return func() {}
		}, want: "format 9, this migrator reads format 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base, src := t.TempDir(), sourceDir(t, tc.extra)
			newDatastore(t, base, "1.0.0", parseData(t, baseData))
			if tc.prepare != nil {
				defer tc.prepare(t, base)()
			}
			before, _ := datastore.ReadChain(base)
			files := treeFiles(t, filepath.Join(base, before.Dir))
			names := entries(t, base)
			_, err := runTo(t, base, src, tc.to)
			if err == nil || !strings.Contains(err.Error(), strings.ReplaceAll(tc.want, "SRC", src)) {
				t.Fatalf("Run = %v\nwant an error containing %q", err, strings.ReplaceAll(tc.want, "SRC", src))
			}
			after, _ := datastore.ReadChain(base)
			if after != before || !reflect.DeepEqual(entries(t, base), names) {
				t.Fatalf("chain %+v → %+v, entries %v → %v", before, after, names, entries(t, base))
			}
			if !reflect.DeepEqual(treeFiles(t, filepath.Join(base, before.Dir)), files) {
				t.Fatal("the datastore changed")
			}
		})
	}
}

// TestRunRemovesOldVersions: after a migration only the datastores of
// the two versions remain; other versions' links and directories, and
// directories nothing names, are removed; unknown names are left alone.
func TestRunRemovesOldVersions(t *testing.T) {
	t.Parallel()
	base, src := t.TempDir(), sourceDir(t, nil)
	newDatastore(t, base, "0.9.0", parseData(t, baseData))
	newDatastore(t, base, "0.9.5", parseData(t, baseData))
	newDatastore(t, base, "1.0.0", parseData(t, baseData))
	for _, d := range []string{"v0.8.0_BBBBBBBBBBBBBBBB", "lost+found"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if got := shape(t, base); got != "current lost+found v0 v0.8.0_R v0.9 v0.9.0 v0.9.0_R v0.9.5 v0.9.5_R v1 v1.0 v1.0.0 v1.0.0_R" {
		t.Fatalf("before: %s", got)
	}
	res, err := runTo(t, base, src, "1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if got := shape(t, base); got != "current lost+found v1 v1.0 v1.0.0 v1.0.0_R v1.1 v1.1.0 v1.1.0_R" {
		t.Fatalf("after: %s (removed %v)", got, res.Removed)
	}
	if len(res.Removed) != 7 {
		t.Fatalf("removed %v", res.Removed)
	}
}

// TestSettingsNesting: the document the model checks, and the keys it
// cannot be built from.
func TestSettingsNesting(t *testing.T) {
	t.Parallel()
	d := parseData(t, "live settings.a 1\nlive settings.a.b 2")
	if _, err := Settings(d.Live); err == nil || !strings.Contains(err.Error(), "settings.a.b: settings.a is a value") {
		t.Fatalf("Settings = %v", err)
	}
	d = parseData(t, `live settings 1`)
	if _, err := Settings(d.Live); err == nil {
		t.Fatal("Settings accepted a value at settings")
	}
	doc, err := Settings(parseData(t, baseData).Live)
	if err != nil || doc["network"].(map[string]any)["hostname"] != "host-1" || doc["updates"].(map[string]any)["seed"] != float64(42) {
		t.Fatalf("Settings = %v, %v", doc, err)
	}
	if _, ok := doc["services"]; ok {
		t.Fatal("services in the settings document")
	}
}
