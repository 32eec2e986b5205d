package spec_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/tools/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var testMacros = map[string]string{
	"_cross_os":     "petrel-",
	"_cross_vendor": "petrel",
	"_cross_arch":   "x86_64",
}

// TestGolden parses every testdata/*.spec and compares the result (or the
// error) with testdata/<name>.golden.
func TestGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*.spec")
	if err != nil || len(files) == 0 {
		t.Fatalf("glob testdata/*.spec = %v, %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			s, err := spec.Parse(filepath.Base(f), data, testMacros)
			if err != nil {
				got = []byte("error:\n" + err.Error() + "\n")
			} else {
				got, err = json.MarshalIndent(s, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, '\n')
			}
			golden := strings.TrimSuffix(f, ".spec") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run go test -update): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Parse(%s) differs from %s:\n got: %s\nwant: %s", f, golden, got, want)
			}
		})
	}
}

const header = "Name: %{_cross_os}x\nVersion: 1\nRelease: 1\nLicense: MIT\n"

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, spec string
		want       string // one of the messages
	}{
		{"missing name", "Version: 1\nRelease: 1\nLicense: MIT\n", "t.spec: missing Name tag"},
		{"missing version", "Name: x\nRelease: 1\nLicense: MIT\n", "t.spec: missing Version tag"},
		{"missing release", "Name: x\nVersion: 1\nLicense: MIT\n", "t.spec: missing Release tag"},
		{"missing license", "Name: x\nVersion: 1\nRelease: 1\n", "t.spec: missing License tag"},
		{"unknown tag", header + "Colour: blue\n", `t.spec:5: unknown tag "Colour"`},
		{"not a tag", header + "just words\n", `t.spec:5: expected "Tag: value" in the preamble, got "just words"`},
		{"unterminated macro", header + "Requires: %{_cross_os\n", `t.spec:5: Requires: unterminated macro "%{_cross_os"`},
		{"unterminated global", "%global x %{y\n" + header, `t.spec:1: %global x: unterminated macro "%{y"`},
		{"package without name", header + "%package\n", `t.spec:5: %package needs exactly one name, got ""`},
		{"package -n without name", header + "%package -n\n", `t.spec:5: %package needs exactly one name, got "-n"`},
		{"duplicate package", header + "%package a\n%package a\n", "t.spec:6: duplicate %package petrel-x-a (first on line 5)"},
		{"rich dep", header + "Requires: (a if b)\n", `t.spec:5: Requires: rich dependencies are not supported: "(a if b)"`},
		{"rich dep later", header + "Requires: a, (b or c)\n", `t.spec:5: Requires: rich dependencies are not supported: "a, (b or c)"`},
		{"missing version", header + "BuildRequires: foo >=\n", `t.spec:5: BuildRequires: missing version after "foo" >=`},
		{"operator first", header + "BuildRequires: >= 1\n", `t.spec:5: BuildRequires: version constraint ">=" without a package name`},
		{"bad dep name", header + "Requires: a;b\n", `t.spec:5: Requires: invalid dependency name "a;b"`},
		{"empty deps", header + "Requires:\n", "t.spec:5: Requires: empty dependency list"},
		{"undefined in dep", header + "Requires: %{nope}x\n", "t.spec:5: Requires: undefined macro %{nope}"},
		{"undefined in name", "Name: %{nope}\nVersion: 1\nRelease: 1\nLicense: MIT\n", "t.spec:1: Name: undefined macro %{nope}"},
		{"dash in version", "Name: x\nVersion: 1-2\nRelease: 1\nLicense: MIT\n", `t.spec:2: Version: expected a non-empty value without blanks, '/', '%' or '-', got "1-2"`},
		{"duplicate source", header + "Source1: a\nSource1: b\n", "t.spec:6: duplicate Source1 (first on line 5)"},
		{"bad source number", header + "Source01: a\n", `t.spec:5: unknown tag "Source01"`},
		{"shell", header + "Source0: %(echo hi)\n", `t.spec:5: Source0: shell expansion "%(echo hi)" is not supported`},
		{"recursion", "%define a %{a}\n" + header + "Requires: %{a}\n", "t.spec:6: Requires: macro expansion nested too deeply (recursive definition?)"},
		{"if without endif", header + "%if 1\n", "t.spec:5: %if without %endif"},
		{"endif without if", header + "%endif\n", "t.spec:5: %endif without %if"},
		{"bad if", header + "%if %{x} > 2\n%endif\n", `t.spec:5: unsupported %if expression "%{x} > 2" (want a number, !, ==, !=, && or ||)`},
		{"name in subpackage", header + "%package a\nName: b\n", `t.spec:6: Name is not allowed in a %package preamble`},
		{"qualifier", header + "Provides(pre): a\n", `t.spec:5: Provides does not take a qualifier "pre"`},
		{"unknown directive", header + "%frobnicate\n", `t.spec:5: unknown directive "%frobnicate" in the preamble`},
		{"duplicate tag", header + "Name: y\n", "t.spec:5: duplicate Name tag"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := spec.Parse("t.spec", []byte(tt.spec), testMacros)
			if err == nil {
				t.Fatalf("Parse(%q) = nil error, want %q", tt.spec, tt.want)
			}
			var se *spec.Error
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T is not a *spec.Error", tt.spec, err)
			}
			if !strings.Contains(err.Error()+"\n", tt.want+"\n") {
				t.Errorf("Parse(%q) error =\n%v\nwant a line %q", tt.spec, err, tt.want)
			}
		})
	}
}

func TestParseDeps(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, line string
		want       []string
	}{
		{"commas", "a, b,c", []string{"a", "b", "c"}},
		{"blanks", "a b\tc", []string{"a", "b", "c"}},
		{"constraints", "a >= 1.2, b = 1:2.0-3 c < 4", []string{"a", "b", "c"}},
		{"no blanks around op", "a>=1.2 b", []string{"a", "b"}},
		{"virtual", "petrel-variant(metal-dev), /bin/sh", []string{"petrel-variant(metal-dev)", "/bin/sh"}},
		{"macros", "%{_cross_os}a %{?missing}%{_cross_os}b", []string{"petrel-a", "petrel-b"}},
		{"conditional text", "%{!?missing:%{_cross_os}c} %{?_cross_os:d}", []string{"petrel-c", "d"}},
		{"short form", "%_cross_os%{nil}e", []string{"petrel-e"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := spec.Parse("t.spec", []byte(header+"Requires: "+tt.line+"\n"), testMacros)
			if err != nil {
				t.Fatalf("Parse(Requires: %s): %v", tt.line, err)
			}
			var got []string
			for _, d := range s.Requires {
				got = append(got, d.Name)
				if d.Line != 5 {
					t.Errorf("dep %q line = %d, want 5", d.Name, d.Line)
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("Parse(Requires: %s) = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}

func TestRPMNames(t *testing.T) {
	t.Parallel()
	src := header + "%package devel\n%package -n other\n%description -n other\n%files devel\n"
	s, err := spec.Parse("t.spec", []byte(src), testMacros)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(s.RPMNames(), " ")
	if want := "petrel-x petrel-x-devel other"; got != want {
		t.Errorf("RPMNames() = %q, want %q", got, want)
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.spec")
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(header + "%global a %{b}%{b}%{b}\n%global b %{c}%{c}\nRequires: %{a}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := spec.Parse("f.spec", data, testMacros)
		if err != nil {
			var se *spec.Error
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not a *spec.Error: %v", err, err)
			}
			if s != nil {
				t.Fatalf("Parse returned a spec and an error")
			}
			return
		}
		if s.Name == "" || s.Version == "" || s.Release == "" || s.License == "" {
			t.Fatalf("Parse succeeded without a required tag: %+v", s)
		}
		for _, d := range append(append([]spec.Dep{}, s.BuildRequires...), s.Requires...) {
			if d.Name == "" || d.Line < 1 {
				t.Fatalf("bad dep %+v", d)
			}
		}
	})
}
