package settings

import (
	"encoding/json"
	"math"
	"sort"
	"strconv"
)

// A schema checks one value at path and records problems.
type schema interface {
	check(ps *problems, path []string, v any)
}

// object is a table with a fixed set of kebab-case fields; unknown keys are
// rejected.
type object map[string]schema

func (o object) check(ps *problems, path []string, v any) {
	m, ok := v.(map[string]any)
	if !ok {
		ps.add(path, "expected a table, got %s", typeName(v))
		return
	}
	for _, k := range sortedKeys(m) {
		p := with(path, k)
		s, known := o[k]
		if !known {
			ps.add(p, "unknown setting (expected one of %s)", listNames(o))
			continue
		}
		if m[k] == nil { // null unsets a value
			continue
		}
		s.check(ps, p, m[k])
	}
}

func listNames(o object) string {
	names := make([]string, 0, len(o))
	for n := range o {
		names = append(names, n)
	}
	sort.Strings(names)
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// mapOf is a table with free-form names (checked by key) and values of one
// schema.
type mapOf struct {
	key  func(string) string // returns a problem, or "" if the name is fine
	elem schema
}

func (m mapOf) check(ps *problems, path []string, v any) {
	t, ok := v.(map[string]any)
	if !ok {
		ps.add(path, "expected a table, got %s", typeName(v))
		return
	}
	for _, k := range sortedKeys(t) {
		p := with(path, k)
		if m.key != nil {
			if msg := m.key(k); msg != "" {
				ps.add(p, "bad name: %s", msg)
				continue
			}
		}
		if t[k] == nil {
			continue
		}
		m.elem.check(ps, p, t[k])
	}
}

// str is a string without control characters, optionally checked further
// by a function returning a problem.
type str struct {
	valid func(string) string
}

func (s str) check(ps *problems, path []string, v any) {
	x, ok := v.(string)
	if !ok {
		ps.add(path, "expected a string, got %s", typeName(v))
		return
	}
	if msg := controlProblem(x); msg != "" {
		ps.add(path, "%s", msg)
		return
	}
	if s.valid != nil {
		if msg := s.valid(x); msg != "" {
			ps.add(path, "%s", msg)
		}
	}
}

// boolean is true or false.
type boolean struct{}

func (boolean) check(ps *problems, path []string, v any) {
	if _, ok := v.(bool); !ok {
		ps.add(path, "expected a boolean, got %s", typeName(v))
	}
}

// integer is a whole number in [min, max].
type integer struct{ min, max int64 }

func (n integer) check(ps *problems, path []string, v any) {
	f, ok := asNumber(v)
	if !ok {
		ps.add(path, "expected an integer, got %s", typeName(v))
		return
	}
	if f != math.Trunc(f) || f < float64(n.min) || f > float64(n.max) {
		ps.add(path, "expected an integer from %d to %d, got %s", n.min, n.max, strconv.FormatFloat(f, 'g', -1, 64))
	}
}

// list is a list whose elements have one schema.
type list struct{ elem schema }

func (l list) check(ps *problems, path []string, v any) {
	var items []any
	switch x := v.(type) {
	case []any:
		items = x
	case []string:
		for _, s := range x {
			items = append(items, s)
		}
	case []map[string]any: // a TOML array of tables
		for _, m := range x {
			items = append(items, m)
		}
	default:
		ps.add(path, "expected a list, got %s", typeName(v))
		return
	}
	for i, e := range items {
		l.elem.check(ps, with(path, strconv.Itoa(i)), e)
	}
}

// oneOrList accepts a single value or a list of values of one schema.
type oneOrList struct{ elem schema }

func (o oneOrList) check(ps *problems, path []string, v any) {
	switch v.(type) {
	case []any, []string, []map[string]any:
		list(o).check(ps, path, v)
	default:
		o.elem.check(ps, path, v)
	}
}

// asNumber converts the number types JSON and TOML decoders produce.
func asNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}
