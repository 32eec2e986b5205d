package spec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Spec is the parsed, macro-expanded content of a spec file that the build
// system needs: identity, dependencies, subpackages and sources.
type Spec struct {
	// Path is the path given to Parse; it prefixes error messages.
	Path string
	// Name, Version, Release, License, Summary, URL and BuildArch are the
	// macro-expanded preamble tags of the main package.
	Name, Version, Release, License, Summary, URL, BuildArch string
	// BuildRequires of the whole spec (a BuildRequires tag in a %package
	// preamble counts for the whole spec, as in rpm).
	BuildRequires []Dep
	// Requires of the main package.
	Requires []Dep
	// Provides of the main package (virtual names other specs may require).
	Provides []Dep
	// Subpackages in the order of their %package sections.
	Subpackages []Subpackage
	// Sources are the SourceN and PatchN tags in spec order.
	Sources []Source
}

// Dep is one entry of a dependency list. A version constraint
// ("foo >= 1.2") is accepted and dropped: Name is "foo".
type Dep struct {
	// Name is the macro-expanded RPM name.
	Name string
	// Line is the 1-based line of the tag in the spec.
	Line int
}

// Subpackage is one %package section.
type Subpackage struct {
	// Name is the full RPM name: "<Name>-<suffix>" for "%package suffix",
	// the given name for "%package -n name".
	Name string
	// Line is the 1-based line of the %package directive.
	Line int
	// Requires of the subpackage.
	Requires []Dep
	// Provides of the subpackage.
	Provides []Dep
}

// Source is one SourceN or PatchN tag.
type Source struct {
	// Tag is "Source" or "Patch".
	Tag string
	// Number is N; an unnumbered tag takes the next free number.
	Number int
	// Value is the macro-expanded file name or URL.
	Value string
	// Line is the 1-based line of the tag.
	Line int
}

// Error is a problem in a spec file, located by line.
type Error struct {
	Path string
	Line int
	Msg  string
}

// Error returns "path:line: msg", or "path: msg" when the problem has no
// line (a missing tag).
func (e *Error) Error() string {
	if e.Line <= 0 {
		return fmt.Sprintf("%s: %s", e.Path, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
}

// RPMNames returns the names of the RPMs the spec builds: the main package
// first, then the subpackages in spec order.
func (s *Spec) RPMNames() []string {
	names := []string{s.Name}
	for _, p := range s.Subpackages {
		names = append(names, p.Name)
	}
	return names
}

// Parse parses the spec file data, read from path, with macros predefined
// (for example _cross_os = "petrel-"). It returns a *Error for the first
// problem of each line it rejects; when a spec has several problems the
// returned error joins one *Error per problem (use errors.As).
func Parse(path string, data []byte, macros map[string]string) (*Spec, error) {
	p := &parser{
		spec: &Spec{Path: path},
		exp:  newExpander(macros),
		sub:  -1,
		seen: map[string]bool{},
	}
	p.run(string(data))
	if len(p.errs) == 1 {
		return nil, p.errs[0]
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return p.spec, nil
}

// section is the kind of spec part the parser is in.
type section int

const (
	inPreamble section = iota // main preamble or a %package preamble
	inBody                    // %description, %prep, %files, ...
)

// bodySections start parts whose content the parser does not interpret.
var bodySections = map[string]bool{
	"description": true, "prep": true, "build": true, "install": true, "check": true,
	"clean": true, "files": true, "changelog": true, "pre": true, "post": true,
	"preun": true, "postun": true, "pretrans": true, "posttrans": true,
	"preuntrans": true, "postuntrans": true, "verifyscript": true,
	"triggerprein": true, "triggerin": true, "triggerun": true, "triggerpostun": true,
	"filetriggerin": true, "filetriggerun": true, "filetriggerpostun": true,
	"transfiletriggerin": true, "transfiletriggerun": true, "transfiletriggerpostun": true,
	"generate_buildrequires": true, "conf": true, "sourcelist": true, "patchlist": true,
}

// cond is one open %if.
type cond struct {
	line      int
	active    bool // the lines of the current branch are read
	parentOn  bool // the enclosing branch was active
	taken     bool // a branch of this %if has been active
	evaluated bool // false for %if in section bodies: every branch is read
}

type parser struct {
	spec  *Spec
	exp   *expander
	errs  []error
	sect  section
	sub   int // index into spec.Subpackages of the current %package, or -1
	conds []cond
	seen  map[string]bool // single-valued tags already set in the main preamble
}

func (p *parser) errorf(line int, format string, args ...any) {
	p.errs = append(p.errs, &Error{Path: p.spec.Path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) active() bool {
	return len(p.conds) == 0 || p.conds[len(p.conds)-1].active
}

func (p *parser) run(text string) {
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := strings.TrimRight(lines[i], "\r")
		trimmed := strings.TrimSpace(line)
		word, rest := directive(trimmed)

		if p.conditional(lineNo, word, rest) {
			continue
		}
		if !p.active() {
			continue
		}
		if word == "global" || word == "define" {
			// A definition continues over lines that end in a backslash.
			for strings.HasSuffix(rest, "\\") && i+1 < len(lines) {
				i++
				rest = strings.TrimSuffix(rest, "\\") + "\n" + strings.TrimRight(lines[i], "\r")
			}
			p.define(lineNo, word, rest)
			continue
		}
		if word == "undefine" {
			delete(p.exp.defs, strings.TrimSpace(rest))
			continue
		}
		if word == "package" {
			p.startPackage(lineNo, rest)
			continue
		}
		if bodySections[word] {
			p.sect = inBody
			continue
		}
		if p.sect == inBody {
			continue
		}
		p.preambleLine(lineNo, trimmed)
	}
	if n := len(p.conds); n > 0 {
		p.errorf(p.conds[n-1].line, "%%if without %%endif")
	}
	p.finish()
}

// directive returns the directive name of a line that starts with %name
// followed by a blank or the end of the line, and the rest of the line.
func directive(line string) (word, rest string) {
	if !strings.HasPrefix(line, "%") {
		return "", ""
	}
	end := 1
	for end < len(line) && isNameChar(line[end]) {
		end++
	}
	if end < len(line) && line[end] != ' ' && line[end] != '\t' {
		return "", ""
	}
	return line[1:end], strings.TrimSpace(line[end:])
}

// conditional handles %if, %ifarch, %ifnarch, %elif, %else and %endif, and
// reports whether the line was one.
func (p *parser) conditional(line int, word, rest string) bool {
	switch word {
	case "if", "ifarch", "ifnarch", "ifos", "ifnos":
		parentOn := p.active()
		c := cond{line: line, parentOn: parentOn, active: parentOn}
		if parentOn && p.sect == inPreamble {
			c.evaluated = true
			v, err := p.evalCond(word, rest)
			if err != nil {
				p.errorf(line, "%s", err)
			}
			c.active, c.taken = v, v
		}
		p.conds = append(p.conds, c)
	case "elif", "else":
		n := len(p.conds)
		if n == 0 {
			p.errorf(line, "%%%s without %%if", word)
			return true
		}
		c := &p.conds[n-1]
		switch {
		case !c.parentOn:
		case !c.evaluated:
			c.active = true
		case c.taken:
			c.active = false
		case word == "else":
			c.active, c.taken = true, true
		default:
			v, err := p.evalCond("if", rest)
			if err != nil {
				p.errorf(line, "%s", err)
			}
			c.active, c.taken = v, v
		}
	case "endif":
		if len(p.conds) == 0 {
			p.errorf(line, "%%endif without %%if")
			return true
		}
		p.conds = p.conds[:len(p.conds)-1]
	default:
		return false
	}
	return true
}

// evalCond evaluates the condition of a preamble %if: an integer (true when
// not zero), "!" before a condition, "a == b", "a != b", joined by && or ||.
// %ifarch compares with %{_cross_arch}, %ifos with "linux".
func (p *parser) evalCond(word, expr string) (bool, error) {
	v, err := p.exp.expand(expr)
	if err != nil {
		return false, err
	}
	switch word {
	case "ifarch", "ifnarch", "ifos", "ifnos":
		want := p.exp.defs["_cross_arch"]
		if word == "ifos" || word == "ifnos" {
			want = "linux"
		}
		match := false
		for _, f := range strings.Fields(v) {
			match = match || f == want
		}
		return match == (word == "ifarch" || word == "ifos"), nil
	}
	return evalExpr(strings.TrimSpace(v))
}

func evalExpr(s string) (bool, error) {
	if a, b, ok := strings.Cut(s, "||"); ok {
		x, err := evalExpr(strings.TrimSpace(a))
		if err != nil {
			return false, err
		}
		y, err := evalExpr(strings.TrimSpace(b))
		return x || y, err
	}
	if a, b, ok := strings.Cut(s, "&&"); ok {
		x, err := evalExpr(strings.TrimSpace(a))
		if err != nil {
			return false, err
		}
		y, err := evalExpr(strings.TrimSpace(b))
		return x && y, err
	}
	for _, op := range []string{"==", "!="} {
		if a, b, ok := strings.Cut(s, op); ok {
			eq := unquote(a) == unquote(b)
			return eq == (op == "=="), nil
		}
	}
	if rest, ok := strings.CutPrefix(s, "!"); ok {
		v, err := evalExpr(strings.TrimSpace(rest))
		return !v, err
	}
	if s == "" {
		return false, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return false, fmt.Errorf("unsupported %%if expression %q (want a number, !, ==, !=, && or ||)", s)
	}
	return n != 0, nil
}

func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// define handles %global and %define.
func (p *parser) define(line int, word, rest string) {
	var name, body string
	if i := strings.IndexAny(rest, " \t\n"); i >= 0 {
		name, body = rest[:i], rest[i+1:]
	} else {
		name, body = rest, ""
	}
	body = strings.TrimSpace(body)
	if strings.HasSuffix(name, "()") {
		p.errorf(line, "%%%s %s: parametric macros are not supported", word, name)
		return
	}
	if !validName(name) {
		p.errorf(line, "%%%s: invalid macro name %q", word, name)
		return
	}
	if word == "global" {
		v, err := p.exp.expand(body)
		if err != nil {
			p.errorf(line, "%%global %s: %s", name, err)
			return
		}
		body = v
	}
	p.exp.defs[name] = body
}

// startPackage handles "%package [-n] name".
func (p *parser) startPackage(line int, rest string) {
	p.sect = inPreamble
	p.sub = -1
	args := strings.Fields(rest)
	full := false
	if len(args) > 0 && args[0] == "-n" {
		full, args = true, args[1:]
	}
	if len(args) != 1 {
		p.errorf(line, "%%package needs exactly one name, got %q", rest)
		return
	}
	name, err := p.exp.expand(args[0])
	if err != nil {
		p.errorf(line, "%%package: %s", err)
		return
	}
	if len(p.exp.undefined) > 0 {
		p.errorf(line, "%%package: undefined macro %%{%s}", p.exp.undefined[0])
		return
	}
	if !full {
		if p.spec.Name == "" {
			p.errorf(line, "%%package %s before the Name tag", name)
			return
		}
		name = p.spec.Name + "-" + name
	}
	for _, s := range p.spec.Subpackages {
		if s.Name == name {
			p.errorf(line, "duplicate %%package %s (first on line %d)", name, s.Line)
			return
		}
	}
	p.spec.Subpackages = append(p.spec.Subpackages, Subpackage{Name: name, Line: line})
	p.sub = len(p.spec.Subpackages) - 1
}

func (p *parser) finish() {
	s := p.spec
	for _, t := range []struct{ tag, v string }{
		{"Name", s.Name}, {"Version", s.Version}, {"Release", s.Release}, {"License", s.License},
	} {
		if t.v == "" && !p.seen[strings.ToLower(t.tag)] {
			p.errorf(0, "missing %s tag", t.tag)
		}
	}
}
