package spec

import (
	"fmt"
	"strconv"
	"strings"
)

// ignoredTags are preamble tags the parser accepts and does not keep.
var ignoredTags = map[string]bool{
	"epoch": true, "group": true, "vendor": true, "packager": true, "distribution": true,
	"buildroot": true, "exclusivearch": true, "excludearch": true, "exclusiveos": true,
	"excludeos": true, "conflicts": true, "obsoletes": true, "buildconflicts": true,
	"recommends": true, "suggests": true, "supplements": true, "enhances": true,
	"orderwithrequires": true, "autoreq": true, "autoprov": true, "autoreqprov": true,
	"prefix": true, "prefixes": true, "nosource": true, "nopatch": true, "bugurl": true,
	"vcs": true, "disttag": true, "modularitylabel": true, "icon": true,
}

// preambleLine parses one line of the main or a %package preamble.
func (p *parser) preambleLine(line int, text string) {
	if text == "" || strings.HasPrefix(text, "#") {
		return
	}
	if strings.HasPrefix(text, "%") {
		p.macroLine(line, text)
		return
	}
	tag, qual, value, ok := splitTag(text)
	if !ok {
		p.errorf(line, "expected \"Tag: value\" in the preamble, got %q", truncate(text))
		return
	}
	lower := strings.ToLower(tag)
	if qual != "" && lower != "requires" && lower != "orderwithrequires" {
		p.errorf(line, "%s does not take a qualifier %q", tag, qual)
		return
	}
	switch {
	case lower == "buildrequires":
		p.spec.BuildRequires = append(p.spec.BuildRequires, p.deps(line, tag, value)...)
	case lower == "requires":
		deps := p.deps(line, tag, value)
		if p.sub >= 0 {
			s := &p.spec.Subpackages[p.sub]
			s.Requires = append(s.Requires, deps...)
		} else {
			p.spec.Requires = append(p.spec.Requires, deps...)
		}
	case lower == "provides":
		deps := p.deps(line, tag, value)
		if p.sub >= 0 {
			s := &p.spec.Subpackages[p.sub]
			s.Provides = append(s.Provides, deps...)
		} else {
			p.spec.Provides = append(p.spec.Provides, deps...)
		}
	case strings.HasPrefix(lower, "source") || strings.HasPrefix(lower, "patch"):
		p.source(line, tag, value)
	case ignoredTags[lower]:
		if _, err := p.exp.expand(value); err != nil {
			p.errorf(line, "%s: %s", tag, err)
		}
	default:
		p.single(line, tag, lower, value)
	}
}

// macroLine handles a line of the preamble that starts with a macro: %bcond
// directives, or a macro whose expansion is empty or a tag line.
func (p *parser) macroLine(line int, text string) {
	word, rest := directive(text)
	switch word {
	case "bcond_with", "bcond_without":
		name := strings.TrimSpace(rest)
		if !validName(name) {
			p.errorf(line, "%%%s: invalid condition name %q", word, name)
			return
		}
		if word == "bcond_without" {
			if _, set := p.exp.defs["without_"+name]; !set {
				p.exp.defs["with_"+name] = "1"
			}
		}
		return
	}
	v, err := p.exp.expand(text)
	if err != nil {
		p.errorf(line, "%s", err)
		return
	}
	v = strings.TrimSpace(v)
	if v == "" {
		return
	}
	if strings.HasPrefix(v, "%") {
		p.errorf(line, "unknown directive %q in the preamble", truncate(text))
		return
	}
	p.preambleLine(line, v)
}

// splitTag splits "Tag(qual): value".
func splitTag(text string) (tag, qual, value string, ok bool) {
	i := 0
	for i < len(text) && (isNameChar(text[i]) && text[i] != '_') {
		i++
	}
	if i == 0 || !isNameStart(text[0]) {
		return "", "", "", false
	}
	tag, rest := text[:i], text[i:]
	if strings.HasPrefix(rest, "(") {
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			return "", "", "", false
		}
		qual, rest = rest[1:end], rest[end+1:]
	}
	rest = strings.TrimLeft(rest, " \t")
	if !strings.HasPrefix(rest, ":") {
		return "", "", "", false
	}
	return tag, qual, strings.TrimSpace(rest[1:]), true
}

// single handles a tag that holds one value.
func (p *parser) single(line int, tag, lower, value string) {
	s := p.spec
	var dst *string
	switch lower {
	case "name":
		dst = &s.Name
	case "version":
		dst = &s.Version
	case "release":
		dst = &s.Release
	case "license":
		dst = &s.License
	case "summary":
		dst = &s.Summary
	case "url":
		dst = &s.URL
	case "buildarch", "buildarchitectures":
		dst = &s.BuildArch
	default:
		p.errorf(line, "unknown tag %q", tag)
		return
	}
	if p.sub >= 0 {
		switch lower {
		case "name", "version", "release":
			p.errorf(line, "%s is not allowed in a %%package preamble", tag)
		}
		// Summary, License, URL and BuildArch of a subpackage are accepted
		// and not kept.
		return
	}
	if p.seen[lower] {
		p.errorf(line, "duplicate %s tag", tag)
		return
	}
	p.seen[lower] = true
	v, err := p.exp.expand(value)
	if err != nil {
		p.errorf(line, "%s: %s", tag, err)
		return
	}
	if strings.TrimSpace(v) == "" {
		p.errorf(line, "%s: empty value", tag)
		return
	}
	switch lower {
	case "name", "version", "release":
		if len(p.exp.undefined) > 0 {
			p.errorf(line, "%s: undefined macro %%{%s}", tag, p.exp.undefined[0])
			return
		}
		bad, want := " \t/%", "blanks, '/' or '%'"
		if lower != "name" {
			bad, want = bad+"-", "blanks, '/', '%' or '-'"
		}
		if v == "" || strings.ContainsAny(v, bad) {
			p.errorf(line, "%s: expected a non-empty value without %s, got %q", tag, want, v)
			return
		}
	}
	// rpm defines %{name}, %{version}, %{summary}... from the tags.
	p.exp.defs[lower] = v
	*dst = v
}

// source handles SourceN and PatchN.
func (p *parser) source(line int, tag, value string) {
	lower := strings.ToLower(tag)
	kind := "Source"
	num := strings.TrimPrefix(lower, "source")
	if strings.HasPrefix(lower, "patch") {
		kind, num = "Patch", strings.TrimPrefix(lower, "patch")
	}
	n := -1
	if num != "" {
		v, err := strconv.Atoi(num)
		if err != nil || v < 0 || strconv.Itoa(v) != num {
			p.errorf(line, "unknown tag %q", tag)
			return
		}
		n = v
	}
	next := 0
	for _, s := range p.spec.Sources {
		if s.Tag != kind {
			continue
		}
		if s.Number == n {
			p.errorf(line, "duplicate %s%d (first on line %d)", kind, n, s.Line)
			return
		}
		next = max(next, s.Number+1)
	}
	if n < 0 {
		n = next
	}
	v, err := p.exp.expand(value)
	if err != nil {
		p.errorf(line, "%s: %s", tag, err)
		return
	}
	if v == "" {
		p.errorf(line, "%s: empty value", tag)
		return
	}
	p.spec.Sources = append(p.spec.Sources, Source{Tag: kind, Number: n, Value: v, Line: line})
	p.exp.defs[fmt.Sprintf("%s%d", strings.ToUpper(kind), n)] = v
}

// deps parses a comma- or blank-separated dependency list with optional
// version constraints ("a, b >= 1.2 c").
func (p *parser) deps(line int, tag, value string) []Dep {
	v, err := p.exp.expand(value)
	if err != nil {
		p.errorf(line, "%s: %s", tag, err)
		return nil
	}
	if len(p.exp.undefined) > 0 {
		p.errorf(line, "%s: undefined macro %%{%s}", tag, p.exp.undefined[0])
		return nil
	}
	if strings.HasPrefix(strings.TrimSpace(v), "(") {
		p.errorf(line, "%s: rich dependencies are not supported: %q", tag, truncate(v))
		return nil
	}
	toks := tokenizeDeps(v)
	var out []Dep
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch {
		case isOp(t):
			p.errorf(line, "%s: version constraint %q without a package name", tag, t)
			return nil
		case strings.HasPrefix(t, "("):
			p.errorf(line, "%s: rich dependencies are not supported: %q", tag, truncate(v))
			return nil
		case !validDepName(t):
			p.errorf(line, "%s: invalid dependency name %q", tag, t)
			return nil
		}
		out = append(out, Dep{Name: t, Line: line})
		if i+1 < len(toks) && isOp(toks[i+1]) {
			if i+2 >= len(toks) || toks[i+2] == "," || isOp(toks[i+2]) {
				p.errorf(line, "%s: missing version after %q %s", tag, t, toks[i+1])
				return nil
			}
			i += 2
		}
		if i+1 < len(toks) && toks[i+1] == "," {
			i++
		}
	}
	if len(out) == 0 {
		p.errorf(line, "%s: empty dependency list", tag)
	}
	return out
}

// tokenizeDeps splits a dependency list into names, operators, versions and
// commas. "foo>=1.2" gives "foo", ">=", "1.2".
func tokenizeDeps(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == ',':
			toks = append(toks, ",")
			i++
		case c == '<' || c == '>' || c == '=':
			j := i + 1
			for j < len(s) && (s[j] == '<' || s[j] == '>' || s[j] == '=') {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		default:
			j, depth := i, 0
			for j < len(s) {
				d := s[j]
				if d == '(' {
					depth++
				} else if d == ')' && depth > 0 {
					depth--
				} else if depth == 0 && (d == ' ' || d == '\t' || d == ',' || d == '<' || d == '>' || d == '=') {
					break
				}
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

func isOp(t string) bool {
	switch t {
	case "<", ">", "=", "<=", ">=":
		return true
	}
	return false
}

// validDepName accepts RPM names, virtual names such as "foo(bar)" and
// file paths.
func validDepName(s string) bool {
	if s == "" || s == "," {
		return false
	}
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isNameChar(c), strings.IndexByte(".+-/:~^", c) >= 0:
		case c == '(':
			depth++
		case c == ')':
			if depth == 0 {
				return false
			}
			depth--
		default:
			return false
		}
	}
	return depth == 0
}
