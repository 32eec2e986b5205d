package graph

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/petrel-os/petrel/tools/project"
	"github.com/petrel-os/petrel/tools/spec"
)

// CycleError reports a dependency cycle. Path starts and ends with the same
// package.
type CycleError struct{ Path []string }

func (e *CycleError) Error() string {
	return "dependency cycle: " + strings.Join(e.Path, " -> ")
}

// Is makes errors.Is(err, project.ErrInvalidInput) hold.
func (e *CycleError) Is(target error) bool { return target == project.ErrInvalidInput }

// UnknownDependencyError reports a dependency on an RPM name that no spec
// of the project builds or provides.
type UnknownDependencyError struct {
	Package    string // package directory name
	Spec       string // spec path, relative to the project root
	Line       int    // line of the tag in Spec
	Dependency string // the RPM name
}

func (e *UnknownDependencyError) Error() string {
	return fmt.Sprintf("%s:%d: unknown dependency %q of package %s", e.Spec, e.Line, e.Dependency, e.Package)
}

// Is makes errors.Is(err, project.ErrInvalidInput) hold.
func (e *UnknownDependencyError) Is(target error) bool { return target == project.ErrInvalidInput }

// ConflictError reports an RPM name built or provided by two packages.
type ConflictError struct {
	RPM      string
	Packages []string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("RPM name %q is built or provided by packages %s", e.RPM, strings.Join(e.Packages, " and "))
}

// Is makes errors.Is(err, project.ErrInvalidInput) hold.
func (e *ConflictError) Is(target error) bool { return target == project.ErrInvalidInput }

// Graph is the dependency graph of a project's packages. It is immutable
// after New and safe for concurrent use.
type Graph struct {
	p        *project.Project
	names    []string            // package names, sorted
	provider map[string]string   // RPM or virtual name → package
	deps     map[string][]string // BuildRequires + Requires, sorted
	build    map[string][]string // BuildRequires only, sorted
	rdeps    map[string][]string // direct reverse deps, sorted
}

// New builds the graph of p. It reports every unknown dependency and name
// conflict at once, then the first cycle found.
func New(p *project.Project) (*Graph, error) {
	g := &Graph{
		p:        p,
		names:    p.PackageNames(),
		provider: map[string]string{},
		deps:     map[string][]string{},
		build:    map[string][]string{},
		rdeps:    map[string][]string{},
	}
	var errs []error
	claim := func(rpm, pkg string) {
		if other, ok := g.provider[rpm]; ok && other != pkg {
			errs = append(errs, &ConflictError{RPM: rpm, Packages: []string{other, pkg}})
			return
		}
		g.provider[rpm] = pkg
	}
	for _, name := range g.names {
		s := p.Packages[name].Spec
		if s == nil {
			continue
		}
		for _, rpm := range s.RPMNames() {
			claim(rpm, name)
		}
		for _, d := range s.Provides {
			claim(d.Name, name)
		}
		for _, sub := range s.Subpackages {
			for _, d := range sub.Provides {
				claim(d.Name, name)
			}
		}
	}
	for _, name := range g.names {
		s := p.Packages[name].Spec
		if s == nil {
			continue
		}
		build, e := g.resolve(name, s, s.BuildRequires)
		errs = append(errs, e...)
		all := slices.Clone(build)
		run, e := g.resolve(name, s, s.Requires)
		errs = append(errs, e...)
		all = append(all, run...)
		for _, sub := range s.Subpackages {
			run, e := g.resolve(name, s, sub.Requires)
			errs = append(errs, e...)
			all = append(all, run...)
		}
		g.build[name] = uniqueSorted(build)
		g.deps[name] = uniqueSorted(all)
		for _, d := range g.deps[name] {
			g.rdeps[d] = append(g.rdeps[d], name)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if c := g.findCycle(); c != nil {
		return nil, c
	}
	return g, nil
}

// resolve maps deps of package name to package names, dropping
// dependencies on the package itself.
func (g *Graph) resolve(name string, s *spec.Spec, deps []spec.Dep) ([]string, []error) {
	var out []string
	var errs []error
	for _, d := range deps {
		pkg, ok := g.provider[d.Name]
		if !ok {
			errs = append(errs, &UnknownDependencyError{Package: name, Spec: s.Path, Line: d.Line, Dependency: d.Name})
			continue
		}
		if pkg != name {
			out = append(out, pkg)
		}
	}
	return out, errs
}

func uniqueSorted(s []string) []string {
	sort.Strings(s)
	return slices.Compact(s)
}

// findCycle returns the first cycle met by a depth-first search over the
// sorted packages and their sorted dependencies, or nil.
func (g *Graph) findCycle() *CycleError {
	const (
		unseen = iota
		onStack
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(n string) *CycleError
	visit = func(n string) *CycleError {
		state[n] = onStack
		stack = append(stack, n)
		for _, d := range g.deps[n] {
			switch state[d] {
			case onStack:
				return newCycle(stack[slices.Index(stack, d):])
			case unseen:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		return nil
	}
	for _, n := range g.names {
		if state[n] == unseen {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}

// newCycle returns the cycle through nodes, rotated to start at its
// smallest name so that the same cycle always reads the same.
func newCycle(nodes []string) *CycleError {
	start := 0
	for i, n := range nodes {
		if n < nodes[start] {
			start = i
		}
	}
	path := append(slices.Clone(nodes[start:]), nodes[:start]...)
	return &CycleError{Path: append(path, path[0])}
}

// Packages returns every package name, sorted.
func (g *Graph) Packages() []string { return slices.Clone(g.names) }

// Deps returns the direct dependencies of package name (BuildRequires and
// the Requires of its main package and subpackages), sorted.
func (g *Graph) Deps(name string) []string { return slices.Clone(g.deps[name]) }

// BuildDeps returns the packages named by the BuildRequires of name, sorted.
func (g *Graph) BuildDeps(name string) []string { return slices.Clone(g.build[name]) }

// Provider returns the package that builds or provides the RPM name rpm.
func (g *Graph) Provider(rpm string) (string, bool) {
	pkg, ok := g.provider[rpm]
	return pkg, ok
}

// Closure returns roots and their transitive dependencies in topological
// order, dependencies first. The order is deterministic: a depth-first
// post-order over roots as given and dependencies sorted by name.
func (g *Graph) Closure(roots ...string) ([]string, error) {
	if err := g.check(roots); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var order []string
	var visit func(n string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, d := range g.deps[n] {
			visit(d)
		}
		order = append(order, n)
	}
	for _, r := range roots {
		visit(r)
	}
	return order, nil
}

// Dependents returns the packages that depend on name directly or
// transitively, sorted.
func (g *Graph) Dependents(name string) []string {
	seen := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		for _, r := range g.rdeps[n] {
			if !seen[r] {
				seen[r] = true
				visit(r)
			}
		}
	}
	visit(name)
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// KitPackages returns the closure of the packages of kit, dependencies
// first.
func (g *Graph) KitPackages(kit string) ([]string, error) {
	k, err := g.p.Kit(kit)
	if err != nil {
		return nil, err
	}
	return g.Closure(k.Packages...)
}

func (g *Graph) check(names []string) error {
	var errs []error
	for _, n := range names {
		if _, ok := g.deps[n]; !ok {
			if _, err := g.p.Package(n); err != nil {
				errs = append(errs, err)
			} else {
				errs = append(errs, fmt.Errorf("%w: package %q has no spec", project.ErrInvalidInput, n))
			}
		}
	}
	return errors.Join(errs...)
}
