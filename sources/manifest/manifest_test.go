package manifest

import (
	"errors"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/waves"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestParseExample(t *testing.T) {
	data, err := os.ReadFile("testdata/manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Updates) != 2 || m.Updates[0].Version != MustParseVersion("0.2.0") || len(m.Updates[0].Waves) != 7 ||
		m.Updates[0].Waves[6] != (waves.Start{Seed: 1843, Time: time.Date(2025, 3, 7, 12, 0, 0, 0, time.UTC)}) ||
		m.Updates[1].Images.Root != "petrel-metal-dev-x86_64-0.1.0-12345678-root.erofs.zst" || len(m.Updates[1].Waves) != 0 ||
		m.Updates[0].Images.RootHash != "4a3f0c6b2d8e9f1a7b5c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a" || m.Updates[1].Images.RootHash != "" {
		t.Fatalf("parsed %+v", m)
	}
	want := Migrations{
		{MustParseVersion("0.1.0"), MustParseVersion("0.2.0")}: {"migrate_v0.2.0_settings-rename.lz4"},
		{MustParseVersion("0.0.9"), MustParseVersion("0.1.0")}: {},
	}
	if !reflect.DeepEqual(m.Migrations, want) {
		t.Fatalf("migrations = %v", m.Migrations)
	}
	out, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	golden := "testdata/manifest.golden.json"
	if *update {
		os.WriteFile(golden, out, 0o644)
	}
	g, err := os.ReadFile(golden)
	if err != nil || string(g) != string(out) {
		t.Fatalf("Marshal differs from %s (run with -update):\n%s", golden, out)
	}
	back, err := Parse(out)
	if err != nil || !reflect.DeepEqual(back, m) {
		t.Fatalf("Parse(Marshal(m)) = %+v, %v", back, err)
	}
}

func TestParseErrors(t *testing.T) {
	valid := func(edit string) string {
		return `{"updates":[{"variant":"v","arch":"x86_64","version":"1.0.0","max_version":"1.0.0","waves":{},` +
			`"images":{"boot":"b","root":"r","hash":"h"}` + edit + `}],"migrations":{}}`
	}
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"not an object", `[]`, []string{"invalid manifest: expected an object, got an array"}},
		{"trailing data", `{"updates":[],"migrations":{}} {}`, []string{"data after the object"}},
		{"missing top-level", `{}`, []string{"updates: missing", "migrations: missing"}},
		{"duplicate key", `{"updates":[],"updates":[],"migrations":{}}`, []string{`"updates": key given twice`}},
		{"updates not array", `{"updates":{},"migrations":{}}`, []string{"updates: expected an array, got an object"}},
		{"missing fields", `{"updates":[{}],"migrations":{}}`, []string{
			"updates[0].variant: missing", "updates[0].max_version: missing", "updates[0].images: missing"}},
		{"bad fields", `{"updates":[{"variant":"","arch":7,"version":"1.0","max_version":"v1.0.0","waves":{"x":"y"},` +
			`"images":{"boot":"a/b","root":"..","hash":""}}],"migrations":{}}`, []string{
			`updates[0].variant: "": expected a non-empty name`,
			"updates[0].arch: expected a string, got a number",
			`updates[0].version: version "1.0": expected MAJOR.MINOR.PATCH`,
			`updates[0].max_version: version "v1.0.0": expected MAJOR.MINOR.PATCH without a leading v`,
			`updates[0].waves: ["x"]: expected a seed from 0 to 2048`,
			`updates[0].images.boot: "a/b": expected a non-empty name`,
			`updates[0].images.root: "..": expected`,
			`updates[0].images.hash: "": expected`}},
		{"bad root hashes", `{"updates":[{"variant":"v","arch":"a","version":"1.0.0","max_version":"1.0.0","waves":{},` +
			`"images":{"boot":"b","root":"r","hash":"h","root_hash":"ABCD"}},` +
			`{"variant":"v","arch":"a","version":"2.0.0","max_version":"2.0.0","waves":{},"images":{"boot":"b","root":"r","hash":"h","root_hash":1}}],"migrations":{}}`,
			[]string{`updates[0].images.root_hash: "ABCD": expected 64 lower-case hex digits`, "updates[1].images.root_hash: expected a string, got a number"}},
		{"duplicate wave seed", valid(`,"waves":{"0":"2025-01-01T00:00:00Z","0":"2025-01-02T00:00:00Z"}`), []string{`"waves": key given twice`}},
		{"waves out of order", `{"updates":[{"variant":"v","arch":"a","version":"1.0.0","max_version":"1.0.0",` +
			`"waves":{"0":"2025-01-02T00:00:00Z","20":"2025-01-01T00:00:00Z"},"images":{"boot":"b","root":"r","hash":"h"}}],"migrations":{}}`,
			[]string{"updates[0].waves: seed 20 starts at 2025-01-01T00:00:00Z, not after seed 0"}},
		{"duplicate update", `{"updates":[` + strings.Repeat(`{"variant":"v","arch":"a","version":"1.0.0","max_version":"1.0.0","waves":{},"images":{"boot":"b","root":"r","hash":"h"}},`, 2) +
			`{"variant":"v","arch":"a","version":"1.0.0+b","max_version":"1.0.0","waves":{},"images":{"boot":"b","root":"r","hash":"h"}}],"migrations":{}}`,
			[]string{"updates[1]: v a 1.0.0 is also updates[0]"}},
		{"bad migrations", `{"updates":[],"migrations":{"1.0.0, 1.1.0":[],"(1.0.0, x)":[],"(1.1.0, 1.2.0)":"m","(1.2.0, 1.3.0)":["a/b"],"(1.1.0,1.2.0)":[]}}`, []string{
			`migrations["1.0.0, 1.1.0"]: expected "(FROM, TO)"`,
			`migrations["(1.0.0, x)"]: version "x"`,
			`migrations["(1.1.0, 1.2.0)"]: expected an array of names, got a string`,
			`migrations["(1.2.0, 1.3.0)"][0]: "a/b": expected a non-empty name`}},
		{"migrations same span twice", `{"updates":[],"migrations":{"(1.1.0, 1.2.0)":[],"(1.1.0,1.2.0)":[]}}`,
			[]string{`migrations["(1.1.0,1.2.0)"]: the same versions as another key`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if err == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse = %v, want ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nlacks %q", err, w)
				}
			}
		})
	}
}

func TestAddAndMaxVersion(t *testing.T) {
	v := MustParseVersion
	mk := func(ver string) Update {
		return Update{Variant: "metal-dev", Arch: "x86_64", Version: v(ver), Images: Images{Boot: "b" + ver, Root: "r" + ver, Hash: "h" + ver}}
	}
	m := &Manifest{Migrations: Migrations{}}
	for _, ver := range []string{"1.0.0", "1.2.0", "1.1.0"} {
		if err := m.Add(mk(ver)); err != nil {
			t.Fatal(err)
		}
	}
	other := mk("0.9.0")
	other.Arch = "aarch64"
	if err := m.Add(other); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range m.Updates {
		got = append(got, u.Arch+" "+u.Version.String()+" max "+u.MaxVersion.String())
	}
	want := []string{"aarch64 0.9.0 max 0.9.0", "x86_64 1.2.0 max 1.2.0", "x86_64 1.1.0 max 1.2.0", "x86_64 1.0.0 max 1.2.0"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("updates = %q\nwant %q", got, want)
	}
	if err := m.Add(mk("1.1.0")); !errors.Is(err, ErrExists) {
		t.Fatalf("Add of a published version = %v, want ErrExists", err)
	}
	// Pull the fleet back to 1.1.0, then a new release raises it again.
	if err := m.SetMaxVersion("metal-dev", "x86_64", v("1.1.0")); err != nil {
		t.Fatal(err)
	}
	for _, u := range m.Updates {
		if u.Arch == "x86_64" && u.MaxVersion != v("1.1.0") {
			t.Fatalf("after SetMaxVersion: %v has max %v", u.Version, u.MaxVersion)
		}
	}
	if err := m.SetMaxVersion("metal-dev", "x86_64", v("1.5.0")); !errors.Is(err, ErrNoUpdate) ||
		!strings.Contains(err.Error(), "not a published version (published: 1.2.0, 1.1.0, 1.0.0)") {
		t.Fatalf("SetMaxVersion(unpublished) = %v", err)
	}
	if err := m.Add(mk("1.3.0")); err != nil || m.Find("metal-dev", "x86_64", v("1.0.0")).MaxVersion != v("1.3.0") {
		t.Fatalf("Add(1.3.0) = %v; max %v", err, m.Find("metal-dev", "x86_64", v("1.0.0")).MaxVersion)
	}
}

func TestVersion(t *testing.T) {
	order := []string{"0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0"}
	for i := range order {
		for j := range order {
			a, b := MustParseVersion(order[i]), MustParseVersion(order[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", a, b, got, want)
			}
		}
	}
	for _, tc := range []struct{ in, out, err string }{
		{"1.2.3", "1.2.3", ""},
		{"v1.2.3", "1.2.3", ""},
		{"1.2.3-rc.1+build.5", "1.2.3-rc.1+build.5", ""},
		{"1.2", "", "expected MAJOR.MINOR.PATCH"},
		{"01.2.3", "", `"01" is not a number without leading zeros`},
		{"1.2.3-01", "", `bad pre-release "01"`},
		{"1.2.3-", "", "bad pre-release"},
		{"1.2.3+", "", "bad build metadata"},
		{"1.x.3", "", `"x" is not a number`},
		{"", "", "expected MAJOR.MINOR.PATCH"},
	} {
		v, err := ParseVersion(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseVersion(%q) = %v, %v; want %q", tc.in, v, err, tc.err)
			}
			continue
		}
		if err != nil || v.String() != tc.out {
			t.Errorf("ParseVersion(%q) = %v, %v", tc.in, v, err)
		}
	}
	if MustParseVersion("1.0.0+a").Compare(MustParseVersion("1.0.0+b")) != 0 {
		t.Error("build metadata takes part in Compare")
	}
}

func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("testdata/manifest.json"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{"updates":[],"migrations":{}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not match ErrInvalid: %v", err)
			}
			return
		}
		out, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(m)): %v\n%s", err, out)
		}
		again, _ := Marshal(back)
		if string(again) != string(out) {
			t.Fatalf("Marshal is not stable:\n%s\n%s", out, again)
		}
	})
}
