package spec_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/builder"
	"github.com/petrel-os/petrel/tools/project"
	"github.com/petrel-os/petrel/tools/spec"
)

// specView is what the build takes from a spec, in a form both parsers
// can produce: one line per fact, sorted where order does not matter.
type specView struct {
	Packages []string // "NAME" in spec order
	Main     string   // "Name|Version|Release|License|Summary|URL|Arch" of the main package
	Build    []string // BuildRequires names, sorted
	Deps     []string // "PACKAGE requires|provides NAME", sorted
	Sources  []string // "SourceN: value" and "PatchN: value", sorted
}

func (v specView) String() string {
	return fmt.Sprintf("packages %q\nmain %s\nbuild-requires %q\ndeps:\n  %s\nsources:\n  %s",
		v.Packages, v.Main, v.Build, strings.Join(v.Deps, "\n  "), strings.Join(v.Sources, "\n  "))
}

// ours is the view of spec.Parse.
func ours(s *spec.Spec, arch string) specView {
	if s.BuildArch != "" {
		arch = s.BuildArch
	}
	v := specView{
		Packages: s.RPMNames(),
		Main:     strings.Join([]string{s.Name, s.Version, s.Release, s.License, s.Summary, s.URL, arch}, "|"),
	}
	for _, d := range s.BuildRequires {
		v.Build = append(v.Build, d.Name)
	}
	add := func(pkg, kind string, deps []spec.Dep) {
		for _, d := range deps {
			v.Deps = append(v.Deps, pkg+" "+kind+" "+d.Name)
		}
	}
	add(s.Name, "requires", s.Requires)
	add(s.Name, "provides", s.Provides)
	for _, p := range s.Subpackages {
		add(p.Name, "requires", p.Requires)
		add(p.Name, "provides", p.Provides)
	}
	for _, src := range s.Sources {
		v.Sources = append(v.Sources, fmt.Sprintf("%s%d: %s", src.Tag, src.Number, src.Value))
	}
	v.sort()
	return v
}

func (v *specView) sort() {
	for _, l := range [][]string{v.Build, v.Deps, v.Sources} {
		slices.Sort(l)
	}
	v.Build = slices.Compact(v.Build)
	v.Deps = slices.Compact(v.Deps)
}

var sourceLine = regexp.MustCompile(`^(Source|Patch)(\d+)\s*:\s*(.*?)\s*$`)

// theirs is the view of rpmspec, run with the macro files the build loads.
func theirs(t *testing.T, path string, macros []string, arch string) specView {
	t.Helper()
	rpmspec := func(args ...string) string {
		all := []string{"--define", "_target_cpu " + arch}
		for _, m := range macros {
			all = append(all, "--load", m)
		}
		return testkit.RunCmd(t, exec.Command(testkit.Tool(t, "rpmspec"), append(append(all, args...), path)...))
	}
	lines := func(s string) []string {
		return strings.FieldsFunc(s, func(r rune) bool { return r == '\n' })
	}
	var v specView
	for i, l := range lines(rpmspec("-q", "--qf", "%{NAME}|%{VERSION}|%{RELEASE}|%{LICENSE}|%{SUMMARY}|%{URL}|%{ARCH}\n")) {
		f := strings.Split(l, "|")
		if f[5] == "(none)" {
			f[5] = ""
		}
		v.Packages = append(v.Packages, f[0])
		if i == 0 {
			v.Main = strings.Join(f, "|")
		}
	}
	for _, l := range lines(rpmspec("-q", "--buildrequires")) {
		v.Build = append(v.Build, strings.Fields(l)[0])
	}
	for _, l := range lines(rpmspec("-q", "--qf", "[%{=NAME} requires %{REQUIRENAME} %{REQUIREFLAGS:deptype}\n][%{=NAME} provides %{PROVIDENAME}\n]")) {
		f := strings.Fields(l)
		switch {
		case f[1] == "requires" && (len(f) < 4 || f[3] == "rpmlib" || f[3] == "interp"):
			// rpm's own: rpmlib() features and scriptlet interpreters.
		case f[1] == "provides" && (f[2] == f[0] || strings.HasPrefix(f[2], f[0]+"(")):
			// rpm's own: every package provides itself, "NAME" and "NAME(ARCH)".
		default:
			v.Deps = append(v.Deps, strings.Join(f[:3], " "))
		}
	}
	for _, l := range lines(rpmspec("--parse")) {
		if m := sourceLine.FindStringSubmatch(l); m != nil {
			v.Sources = append(v.Sources, fmt.Sprintf("%s%s: %s", m[1], strings.TrimLeft(m[2], "0")+map[bool]string{true: "0"}[strings.TrimLeft(m[2], "0") == ""], m[3]))
		}
	}
	v.sort()
	return v
}

// TestAgainstRPMSpec parses every spec of the repository and of the test
// fixture projects with spec.Parse and with rpmspec (rpm's own parser),
// both with the project's macros as a build loads them, and compares what
// the build uses: the packages, the main package's tags, BuildRequires,
// Requires and Provides of each package, and the sources.
//
// Deliberate differences: rpm adds dependencies of its own (rpmlib()
// features, scriptlet interpreters, and every package providing its own
// name), which no spec writes; they are left out of the comparison. rpm
// refuses a package without %description ("Package has no %description")
// where spec.Parse, which does not read section bodies, accepts it and
// leaves the refusal to rpmbuild; the fixture that lacked one has one now.
func TestAgainstRPMSpec(t *testing.T) {
	t.Parallel()
	root := testkit.RepoRoot(t)
	for _, proj := range []string{".", "tools/builder/testdata/fixture", "tools/project/testdata/good"} {
		dir := filepath.Join(root, proj)
		p, err := project.Load(context.Background(), dir)
		if err != nil {
			t.Fatalf("load %s: %v", proj, err)
		}
		const arch = "x86_64"
		identity, err := builder.IdentityMacros(p, arch)
		if err != nil {
			t.Fatal(err)
		}
		macroDir := t.TempDir()
		macros := []string{filepath.Join(macroDir, "identity.macros"), filepath.Join(macroDir, "petrel.macros")}
		testkit.WriteFiles(t, macroDir, map[string]string{"identity.macros": string(identity), "petrel.macros": string(builder.PolicyMacros())})
		specs, _ := filepath.Glob(filepath.Join(dir, "packages", "*", "*.spec"))
		if len(specs) == 0 {
			t.Fatalf("%s has no packages/*/*.spec", proj)
		}
		for _, path := range specs {
			rel, _ := filepath.Rel(root, path)
			t.Run(rel, func(t *testing.T) {
				t.Parallel()
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				s, err := spec.Parse(rel, data, p.MacrosFor(arch))
				if err != nil {
					t.Fatalf("spec.Parse: %v", err)
				}
				got, want := ours(s, arch), theirs(t, path, macros, arch)
				if got.String() != want.String() {
					t.Errorf("spec.Parse and rpmspec differ on %s\nspec.Parse:\n%s\n\nrpmspec:\n%s", rel, got, want)
				}
			})
		}
	}
}
