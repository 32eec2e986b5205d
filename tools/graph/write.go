package graph

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"
)

// nodes returns the closure of roots, or every package when roots is empty,
// dependencies first.
func (g *Graph) nodes(roots []string) ([]string, error) {
	if len(roots) == 0 {
		roots = g.names
	}
	return g.Closure(roots...)
}

// WriteText writes one line per package of the closure of roots (every
// package when roots is empty), dependencies first:
//
//	kernel: glibc
//	os: glibc
//
// A dependency needed only to build is marked "(build)".
func (g *Graph) WriteText(w io.Writer, roots []string) error {
	order, err := g.nodes(roots)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	for _, n := range order {
		deps := g.deps[n]
		if len(deps) == 0 {
			fmt.Fprintln(bw, n)
			continue
		}
		parts := make([]string, len(deps))
		for i, d := range deps {
			parts[i] = d
			if g.buildOnly(n, d) {
				parts[i] += " (build)"
			}
		}
		fmt.Fprintf(bw, "%s: %s\n", n, strings.Join(parts, ", "))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write graph: %w", err)
	}
	return nil
}

// WriteDOT writes the closure of roots (every package when roots is empty)
// as a Graphviz digraph. Edges point from a package to its dependency;
// build-only edges are dashed.
func (g *Graph) WriteDOT(w io.Writer, roots []string) error {
	order, err := g.nodes(roots)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "digraph packages {")
	fmt.Fprintln(bw, "\trankdir=LR;")
	for _, n := range order {
		fmt.Fprintf(bw, "\t%q;\n", n)
	}
	for _, n := range order {
		for _, d := range g.deps[n] {
			style := ""
			if g.buildOnly(n, d) {
				style = " [style=dashed]"
			}
			fmt.Fprintf(bw, "\t%q -> %q%s;\n", n, d, style)
		}
	}
	fmt.Fprintln(bw, "}")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write graph: %w", err)
	}
	return nil
}

// buildOnly reports whether n depends on d only through BuildRequires.
func (g *Graph) buildOnly(n, d string) bool {
	if !slices.Contains(g.build[n], d) {
		return false
	}
	s := g.p.Packages[n].Spec
	for _, r := range s.Requires {
		if g.provider[r.Name] == d {
			return false
		}
	}
	for _, sub := range s.Subpackages {
		for _, r := range sub.Requires {
			if g.provider[r.Name] == d {
				return false
			}
		}
	}
	return true
}
