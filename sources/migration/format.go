package migration

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/petrel-os/petrel/sources/datastore"
)

// MaxSize bounds a migration file: far above any real one, low enough
// that a hostile file cannot exhaust the migrator's memory.
const MaxSize = 1 << 20

// Kind names what an operation does.
type Kind string

// The operations. Each has a forward and a backward; see
// docs/migrations.md for what each does to values, metadata and
// transactions, and what it keeps for its backward.
const (
	// AddSettings: forward keeps a copy of anything already at or below
	// the keys; backward removes every value and metadata at or below
	// them and restores that copy.
	AddSettings Kind = "add-settings"
	// RemoveSettings: forward keeps a copy of every value and metadata
	// at or below the keys and removes them; backward restores the copy.
	RemoveSettings Kind = "remove-settings"
	// Move renames a setting or a prefix: every value and metadata at
	// or below From goes to the same place below To; backward moves
	// them back. Anything that was already at or below To is kept and
	// restored by the backward.
	Move Kind = "move"
	// ReplaceValue replaces a value (a string, a number, a list, ...)
	// of one key that equals one of the map's old values by its new
	// value; backward replaces it back.
	ReplaceValue Kind = "replace-value"
	// ReplaceTemplate is ReplaceMetadata of the "template" metadata.
	ReplaceTemplate Kind = "replace-template"
	// ReplaceGenerator is ReplaceMetadata of the "setting-generator"
	// metadata, with an option to unset the generated value so that
	// sundog generates it again with the new command.
	ReplaceGenerator Kind = "replace-generator"
	// AddMetadata sets one metadata value; backward removes it (and
	// restores what it replaced, if anything).
	AddMetadata Kind = "add-metadata"
	// RemoveMetadata removes one metadata value; backward restores it.
	RemoveMetadata Kind = "remove-metadata"
	// ReplaceMetadata replaces one metadata value that equals one of
	// the map's old values by its new value; backward replaces it back.
	ReplaceMetadata Kind = "replace-metadata"
	// Function runs a Go function registered in the migrator (see
	// Functions), for what the operations above cannot express.
	Function Kind = "function"
)

// Well-known metadata keys.
const (
	MetaTemplate  = "template"
	MetaGenerator = "setting-generator"
)

// kindFields lists the fields each kind takes besides "kind"; a field
// ending in "?" is optional.
func kindFields() map[Kind][]string {
	return map[Kind][]string{
		AddSettings:      {"keys"},
		RemoveSettings:   {"keys"},
		Move:             {"from", "to"},
		ReplaceValue:     {"key", "old?", "new?", "map?"},
		ReplaceTemplate:  {"key", "old?", "new?", "map?"},
		ReplaceGenerator: {"key", "old?", "new?", "map?", "regenerate?"},
		AddMetadata:      {"key", "meta", "value"},
		RemoveMetadata:   {"key", "meta"},
		ReplaceMetadata:  {"key", "meta", "old?", "new?", "map?"},
		Function:         {"name"},
	}
}

// Kinds returns every operation kind, sorted.
func Kinds() []Kind {
	var ks []Kind
	for k := range kindFields() {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Migration is one parsed migration file.
type Migration struct {
	// Name is what the file was loaded as: its target name on a host, a
	// path in the repository at build time. Saved copies are kept under
	// it, so forward and backward must load it under the same name.
	Name        string
	Description string
	Operations  []Operation
}

// Operation is one step of a migration. Which fields are set depends on
// Kind.
type Operation struct {
	Kind Kind
	// Keys of AddSettings and RemoveSettings: each key and every key
	// below it (segment by segment: settings.a covers settings.a.b, not
	// settings.ab).
	Keys []datastore.Key
	// From and To of Move.
	From, To datastore.Key
	// Key is the data key of ReplaceValue and of the metadata kinds.
	Key datastore.Key
	// Meta is the metadata key of the metadata kinds (fixed for
	// ReplaceTemplate and ReplaceGenerator).
	Meta datastore.Key
	// Map holds the replacements of the Replace kinds.
	Map []Replacement
	// Value is AddMetadata's value, canonical JSON.
	Value []byte
	// Regenerate makes ReplaceGenerator also unset the setting (keeping
	// a copy) when it replaces its generator.
	Regenerate bool
	// Function names the registered Go function of a Function operation.
	Function string
	// Line is the line of the operation's [[operation]] header, 0 when
	// unknown.
	Line int
}

// Replacement is one old → new pair, both canonical JSON.
type Replacement struct{ Old, New []byte }

// ErrInvalid is matched by every *Error.
var ErrInvalid = errors.New("invalid migration")

// Problem is one thing wrong with a migration file.
type Problem struct {
	// Operation is the index in the file's operation list, -1 for the
	// file as a whole.
	Operation int
	// Kind of the operation, when known.
	Kind Kind
	// Line in the file, 0 when unknown.
	Line int
	// Field, e.g. "to" or "map[1].new"; empty for the whole operation.
	Field string
	Msg   string
}

func (p Problem) String() string {
	var where []string
	if p.Line > 0 {
		where = append(where, fmt.Sprintf("line %d", p.Line))
	}
	var b strings.Builder
	if p.Operation >= 0 {
		fmt.Fprintf(&b, "operation[%d]", p.Operation)
		if p.Kind != "" {
			fmt.Fprintf(&b, " (%s)", p.Kind)
		}
		if p.Field != "" {
			b.WriteString(".")
		}
	}
	b.WriteString(p.Field)
	if b.Len() > 0 {
		where = append(where, b.String())
	}
	return strings.Join(append(where, p.Msg), ": ")
}

// Error lists every problem found in one migration file.
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = e.File + ": " + p.String()
	}
	return strings.Join(parts, "\n")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

var opHeader = regexp.MustCompile(`^[ \t]*\[\[[ \t]*operation[ \t]*\]\]`)

// headerLines returns the line numbers of the [[operation]] headers.
func headerLines(data []byte) []int {
	var lines []int
	for i, l := range strings.Split(string(data), "\n") {
		if opHeader.MatchString(l) {
			lines = append(lines, i+1)
		}
	}
	return lines
}

// parser collects the problems of one file.
type parser struct {
	probs []Problem
}

func (p *parser) add(op int, kind Kind, line int, field, format string, args ...any) {
	p.probs = append(p.probs, Problem{Operation: op, Kind: kind, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// Parse reads a migration file strictly: unknown keys, kinds and fields,
// missing fields, values of the wrong type, invalid keys, overlapping
// keys and lossy replacement maps are errors. It reports every problem at
// once as an *Error naming the file, the operation (index, kind and line)
// and the field.
func Parse(name string, data []byte) (*Migration, error) {
	if len(data) > MaxSize {
		return nil, &Error{File: name, Problems: []Problem{{Operation: -1, Msg: fmt.Sprintf("%d bytes, more than the limit of %d", len(data), MaxSize)}}}
	}
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{File: name, Problems: []Problem{{Operation: -1, Line: pe.Position.Line, Msg: "TOML: " + pe.Message}}}
		}
		return nil, &Error{File: name, Problems: []Problem{{Operation: -1, Msg: "TOML: " + err.Error()}}}
	}
	m := &Migration{Name: name}
	var p parser
	for _, k := range sortedKeys(doc) {
		switch k {
		case "description":
			s, ok := doc[k].(string)
			if !ok {
				p.add(-1, "", 0, k, "expected a string, got %s", typeName(doc[k]))
			}
			m.Description = s
		case "operation":
		default:
			p.add(-1, "", 0, "", "unknown key %q (expected description, operation)", k)
		}
	}
	ops, ok := tables(doc["operation"])
	switch {
	case doc["operation"] == nil || ok && len(ops) == 0:
		p.add(-1, "", 0, "", "no operations: add [[operation]] tables")
	case !ok:
		p.add(-1, "", 0, "operation", "expected an array of tables ([[operation]]), got %s", typeName(doc["operation"]))
	}
	lines := headerLines(data)
	if len(lines) != len(ops) {
		lines = nil // inline tables: no header lines to point at
	}
	for i, t := range ops {
		line := 0
		if lines != nil {
			line = lines[i]
		}
		if op, ok := p.operation(i, line, t); ok {
			m.Operations = append(m.Operations, op)
		}
	}
	p.crossChecks(m)
	if len(p.probs) > 0 {
		return nil, &Error{File: name, Problems: p.probs}
	}
	return m, nil
}

// operation parses operation i.
func (p *parser) operation(i, line int, t map[string]any) (Operation, bool) {
	op := Operation{Line: line}
	before := len(p.probs)
	kind, ok := t["kind"].(string)
	if !ok {
		if t["kind"] == nil {
			p.add(i, "", line, "kind", "missing (one of %s)", kindList())
		} else {
			p.add(i, "", line, "kind", "expected a string, got %s", typeName(t["kind"]))
		}
		return op, false
	}
	op.Kind = Kind(kind)
	fields, known := kindFields()[op.Kind]
	if !known {
		p.add(i, "", line, "kind", "unknown kind %q (expected one of %s)", kind, kindList())
		return op, false
	}
	allowed := map[string]bool{"kind": true}
	for _, f := range fields {
		name, optional := strings.CutSuffix(f, "?")
		allowed[name] = true
		if !optional && t[name] == nil {
			p.add(i, op.Kind, line, name, "missing")
		}
	}
	for _, k := range sortedKeys(t) {
		if !allowed[k] {
			p.add(i, op.Kind, line, "", "unknown field %q (a %s operation takes %s)", k, op.Kind, strings.ReplaceAll(strings.Join(fields, ", "), "?", ""))
		}
	}
	f := fieldReader{p: p, op: i, kind: op.Kind, line: line, t: t}
	switch op.Kind {
	case AddSettings, RemoveSettings:
		op.Keys = f.keys("keys")
	case Move:
		op.From, op.To = f.key("from", datastore.DataKey), f.key("to", datastore.DataKey)
		if op.From.Name() != "" && op.To.Name() != "" {
			switch {
			case op.From.Equal(op.To):
				p.add(i, op.Kind, line, "to", "is the same key as from")
			case under(op.To.Name(), op.From.Name()) || under(op.From.Name(), op.To.Name()):
				p.add(i, op.Kind, line, "to", "%s and %s overlap: one is inside the other", op.From.Name(), op.To.Name())
			}
		}
	case ReplaceValue, ReplaceTemplate, ReplaceGenerator, ReplaceMetadata:
		op.Key = f.key("key", datastore.DataKey)
		switch op.Kind {
		case ReplaceTemplate:
			op.Meta = datastore.MustKey(datastore.MetaKey, MetaTemplate)
		case ReplaceGenerator:
			op.Meta = datastore.MustKey(datastore.MetaKey, MetaGenerator)
			op.Regenerate = f.boolean("regenerate")
		case ReplaceMetadata:
			op.Meta = f.key("meta", datastore.MetaKey)
		}
		op.Map = f.replacements(op.Kind == ReplaceTemplate || op.Kind == ReplaceGenerator)
	case AddMetadata:
		op.Key, op.Meta, op.Value = f.key("key", datastore.DataKey), f.key("meta", datastore.MetaKey), f.value("value", t["value"], false)
	case RemoveMetadata:
		op.Key, op.Meta = f.key("key", datastore.DataKey), f.key("meta", datastore.MetaKey)
	case Function:
		op.Function = f.str("name")
		if op.Function != "" && !functionName.MatchString(op.Function) {
			p.add(i, op.Kind, line, "name", "expected lower-case letters, digits and '-', got %q", op.Function)
		}
	}
	return op, len(p.probs) == before
}

var functionName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

// crossChecks finds problems between operations: two replacements of
// the same value in one migration compose into a mapping that the
// per-operation checks cannot see (a → c, then b → c), so the file must
// say it in one map.
func (p *parser) crossChecks(m *Migration) {
	seen := map[string]int{}
	for i, op := range m.Operations {
		if op.Map == nil {
			continue
		}
		slot := op.Key.Name()
		if op.Kind != ReplaceValue {
			slot += " metadata " + op.Meta.Name()
		}
		if j, ok := seen[slot]; ok {
			p.add(i, op.Kind, op.Line, "key", "%s is replaced by operation[%d] too: put every replacement of one value in one map", slot, j)
			continue
		}
		seen[slot] = i
	}
}

func kindList() string {
	var names []string
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}

// fieldReader reads typed fields of one operation table.
type fieldReader struct {
	p    *parser
	op   int
	kind Kind
	line int
	t    map[string]any
}

func (f fieldReader) bad(field, format string, args ...any) {
	f.p.add(f.op, f.kind, f.line, field, format, args...)
}

func (f fieldReader) str(field string) string {
	v, present := f.t[field]
	if !present {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		f.bad(field, "expected a string, got %s", typeName(v))
	}
	return s
}

func (f fieldReader) boolean(field string) bool {
	v, present := f.t[field]
	if !present {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		f.bad(field, "expected true or false, got %s", typeName(v))
	}
	return b
}

// key parses field as a key of typ; the zero Key when absent or bad.
func (f fieldReader) key(field string, typ datastore.KeyType) datastore.Key {
	s := f.str(field)
	if s == "" {
		if _, present := f.t[field]; present {
			if _, isStr := f.t[field].(string); isStr {
				f.bad(field, "empty %s", typ)
			}
		}
		return datastore.Key{}
	}
	k, err := datastore.ParseKey(typ, s)
	if err != nil {
		f.bad(field, "%v", err)
	}
	return k
}

// keys parses a non-empty list of data keys of which none is inside
// another.
func (f fieldReader) keys(field string) []datastore.Key {
	v, present := f.t[field]
	if !present {
		return nil
	}
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		f.bad(field, "expected a non-empty list of keys, got %s", typeName(v))
		return nil
	}
	var keys []datastore.Key
	for j, e := range list {
		name := fmt.Sprintf("%s[%d]", field, j)
		s, ok := e.(string)
		if !ok {
			f.bad(name, "expected a string, got %s", typeName(e))
			continue
		}
		k, err := datastore.ParseKey(datastore.DataKey, s)
		if err != nil {
			f.bad(name, "%v", err)
			continue
		}
		for _, o := range keys {
			if under(k.Name(), o.Name()) || under(o.Name(), k.Name()) {
				f.bad(name, "%s overlaps %s (a key covers every key below it)", k.Name(), o.Name())
			}
		}
		keys = append(keys, k)
	}
	return keys
}

// value converts a TOML value to canonical datastore JSON; strings
// insists on a string.
func (f fieldReader) value(field string, v any, stringOnly bool) []byte {
	if _, isStr := v.(string); stringOnly && !isStr {
		f.bad(field, "expected a string, got %s", typeName(v))
		return nil
	}
	raw, err := encodeTOML(v)
	if err != nil {
		f.bad(field, "%v", err)
	}
	return raw
}

// replacements reads old/new or map and checks that the mapping can be
// undone: every old value at most once, every new value at most once
// (two old values becoming one new value is lossy), no pair without a
// change.
func (f fieldReader) replacements(stringOnly bool) []Replacement {
	_, hasOld := f.t["old"]
	_, hasNew := f.t["new"]
	mv, hasMap := f.t["map"]
	var rs []Replacement
	var fields [][2]string
	switch {
	case hasMap && (hasOld || hasNew):
		f.bad("map", "give either old and new or map, not both")
		return nil
	case hasMap:
		list, ok := tables(mv)
		if !ok || len(list) == 0 {
			f.bad("map", "expected a non-empty array of {old = ..., new = ...} tables, got %s", typeName(mv))
			return nil
		}
		for j, pair := range list {
			prefix := fmt.Sprintf("map[%d]", j)
			for _, k := range sortedKeys(pair) {
				if k != "old" && k != "new" {
					f.bad(prefix, "unknown field %q (expected old, new)", k)
				}
			}
			if pair["old"] == nil || pair["new"] == nil {
				f.bad(prefix, "needs old and new")
				continue
			}
			rs = append(rs, Replacement{Old: f.value(prefix+".old", pair["old"], stringOnly), New: f.value(prefix+".new", pair["new"], stringOnly)})
			fields = append(fields, [2]string{prefix + ".old", prefix + ".new"})
		}
	case hasOld && hasNew:
		rs = []Replacement{{Old: f.value("old", f.t["old"], stringOnly), New: f.value("new", f.t["new"], stringOnly)}}
		fields = [][2]string{{"old", "new"}}
	default:
		f.bad("", "needs old and new, or map")
		return nil
	}
	for j, r := range rs {
		if r.Old == nil || r.New == nil {
			continue
		}
		if string(r.Old) == string(r.New) {
			f.bad(fields[j][1], "is the same value as old (%s)", r.Old)
		}
		for k := range j {
			if string(rs[k].Old) == string(r.Old) {
				f.bad(fields[j][0], "%s is already replaced by %s", r.Old, fields[k][0])
			}
			if string(rs[k].New) == string(r.New) {
				f.bad(fields[j][1], "lossy: %s and %s would both become %s, so backward could not tell which to restore", rs[k].Old, r.Old, r.New)
			}
		}
	}
	return rs
}

// tables returns an array of tables, written as [[name]] tables or as an
// inline array of inline tables.
func tables(v any) ([]map[string]any, bool) {
	switch x := v.(type) {
	case []map[string]any:
		return x, true
	case []any:
		out := make([]map[string]any, len(x))
		for i, e := range x {
			t, ok := e.(map[string]any)
			if !ok {
				return nil, false
			}
			out[i] = t
		}
		return out, true
	}
	return nil, false
}

// encodeTOML converts a decoded TOML value to canonical datastore JSON:
// a string, number, boolean or a list of them.
func encodeTOML(v any) ([]byte, error) {
	switch x := v.(type) {
	case time.Time:
		return nil, errors.New("a date or time cannot be stored: write it as a string")
	case map[string]any:
		return nil, errors.New("a table cannot be one value (settings are stored one key per value)")
	case []map[string]any:
		return nil, errors.New("a list of tables cannot be stored")
	case []any:
		for i, e := range x {
			switch e.(type) {
			case time.Time, map[string]any, []any, []map[string]any:
				return nil, fmt.Errorf("list element %d: lists may hold only strings, numbers and booleans", i)
			}
		}
	}
	return datastore.EncodeValue(v)
}

// under reports whether name is root or below it, segment by segment
// (both canonical key names).
func under(name, root string) bool {
	return name == root || strings.HasPrefix(name, root+".")
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// typeName names a decoded TOML value's type for messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, float64:
		return "a number"
	case time.Time:
		return "a date"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%T", v)
}
