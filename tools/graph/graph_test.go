package graph_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/tools/graph"
	"github.com/petrel-os/petrel/tools/project"
	"github.com/petrel-os/petrel/tools/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// pkg describes a test package: its spec lines after the required tags.
type pkg struct {
	name  string
	lines string
}

// newProject builds an in-memory project of packages; kit "core" holds
// the packages named in kit.
func newProject(t *testing.T, kit []string, pkgs ...pkg) *project.Project {
	t.Helper()
	p := &project.Project{
		Root:     "/nowhere",
		Manifest: project.Manifest{OS: project.OSIdentity{Name: "petrel"}},
		Packages: map[string]*project.Package{},
		Kits:     map[string]*project.Kit{"core": {Name: "core", Packages: kit}},
	}
	macros := p.MacrosFor("x86_64")
	for _, k := range pkgs {
		text := fmt.Sprintf("Name: %%{_cross_os}%s\nVersion: 1\nRelease: 1\nLicense: MIT\n%s", k.name, k.lines)
		path := "packages/" + k.name + "/" + k.name + ".spec"
		s, err := spec.Parse(path, []byte(text), macros)
		if err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}
		p.Packages[k.name] = &project.Package{Name: k.name, Spec: s}
	}
	return p
}

var sample = []pkg{
	{"glibc", "%package devel\nRequires: %{name}\n"},
	{"kernel", "BuildRequires: %{_cross_os}glibc-devel\nRequires: %{_cross_os}glibc\n"},
	{"os", "BuildRequires: %{_cross_os}glibc-devel\n%package extra\nRequires: %{_cross_os}systemd\n"},
	{"systemd", "Requires: %{_cross_os}glibc\nProvides: %{_cross_os}init\n"},
	{"release", "Requires: %{_cross_os}os, %{_cross_os}kernel, %{_cross_os}init\n"},
}

func TestGraph(t *testing.T) {
	t.Parallel()
	g, err := graph.New(newProject(t, []string{"release"}, sample...))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, tt := range []struct {
		name string
		got  func() ([]string, error)
		want []string
	}{
		{"deps of os", func() ([]string, error) { return g.Deps("os"), nil }, []string{"glibc", "systemd"}},
		{"build deps of os", func() ([]string, error) { return g.BuildDeps("os"), nil }, []string{"glibc"}},
		{"deps via provides", func() ([]string, error) { return g.Deps("release"), nil }, []string{"kernel", "os", "systemd"}},
		{"self dep dropped", func() ([]string, error) { return g.Deps("glibc"), nil }, nil},
		{"closure", func() ([]string, error) { return g.Closure("release") }, []string{"glibc", "kernel", "systemd", "os", "release"}},
		{"closure of two roots", func() ([]string, error) { return g.Closure("systemd", "kernel") }, []string{"glibc", "systemd", "kernel"}},
		{"dependents of glibc", func() ([]string, error) { return g.Dependents("glibc"), nil }, []string{"kernel", "os", "release", "systemd"}},
		{"dependents of systemd", func() ([]string, error) { return g.Dependents("systemd"), nil }, []string{"os", "release"}},
		{"dependents of release", func() ([]string, error) { return g.Dependents("release"), nil }, []string{}},
		{"kit packages", func() ([]string, error) { return g.KitPackages("core") }, []string{"glibc", "kernel", "systemd", "os", "release"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.got()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := g.Closure("ghost"); !errors.Is(err, project.ErrInvalidInput) {
		t.Errorf("Closure(ghost) error = %v, want ErrInvalidInput", err)
	}
	if _, err := g.KitPackages("nokit"); !errors.Is(err, project.ErrInvalidInput) {
		t.Errorf("KitPackages(nokit) error = %v, want ErrInvalidInput", err)
	}
}

func TestCycle(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		pkgs []pkg
		want string
	}{
		{"three", []pkg{
			{"a", "BuildRequires: %{_cross_os}b\n"},
			{"b", "Requires: %{_cross_os}c\n"},
			{"c", "%package x\nRequires: %{_cross_os}a\n"},
			{"d", "Requires: %{_cross_os}a\n"},
		}, "dependency cycle: a -> b -> c -> a"},
		{"not from the first package", []pkg{
			{"a", "Requires: %{_cross_os}z\n"},
			{"y", "Requires: %{_cross_os}z\n"},
			{"z", "Requires: %{_cross_os}y\n"},
		}, "dependency cycle: y -> z -> y"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := graph.New(newProject(t, nil, tt.pkgs...))
			var ce *graph.CycleError
			if !errors.As(err, &ce) {
				t.Fatalf("New error = %v, want a *CycleError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("New error = %q, want %q", err, tt.want)
			}
			if !errors.Is(err, project.ErrInvalidInput) {
				t.Errorf("cycle error does not wrap ErrInvalidInput")
			}
		})
	}
}

func TestUnknownDependency(t *testing.T) {
	t.Parallel()
	_, err := graph.New(newProject(t, nil,
		pkg{"a", "Summary: x\nBuildRequires: %{_cross_os}b, %{_cross_os}foo\n"},
		pkg{"b", "%package sub\nRequires: %{_cross_os}bar\n"},
	))
	want := []string{
		`packages/a/a.spec:6: unknown dependency "petrel-foo" of package a`,
		`packages/b/b.spec:6: unknown dependency "petrel-bar" of package b`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("New error =\n%v\nwant\n%s", err, strings.Join(want, "\n"))
	}
	var ue *graph.UnknownDependencyError
	if !errors.As(err, &ue) || ue.Line != 6 || ue.Package != "a" || ue.Dependency != "petrel-foo" {
		t.Errorf("errors.As UnknownDependencyError = %+v", ue)
	}
	if !errors.Is(err, project.ErrInvalidInput) {
		t.Errorf("unknown dependency error does not wrap ErrInvalidInput")
	}
}

func TestConflict(t *testing.T) {
	t.Parallel()
	_, err := graph.New(newProject(t, nil,
		pkg{"a", "Provides: %{_cross_os}b\n"},
		pkg{"b", ""},
	))
	var ce *graph.ConflictError
	if !errors.As(err, &ce) || ce.RPM != "petrel-b" {
		t.Fatalf("New error = %v, want a ConflictError on petrel-b", err)
	}
}

func TestWrite(t *testing.T) {
	t.Parallel()
	g, err := graph.New(newProject(t, nil, sample...))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		golden string
		roots  []string
		write  func(*bytes.Buffer, []string) error
	}{
		{"all.txt", nil, func(b *bytes.Buffer, r []string) error { return g.WriteText(b, r) }},
		{"os.txt", []string{"os"}, func(b *bytes.Buffer, r []string) error { return g.WriteText(b, r) }},
		{"all.dot", nil, func(b *bytes.Buffer, r []string) error { return g.WriteDOT(b, r) }},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.write(&b, tt.roots); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run go test -update): %v", err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("output differs from %s:\n got:\n%s\nwant:\n%s", path, b.Bytes(), want)
			}
		})
	}
}
