package migration

import (
	"errors"
	"strings"
	"testing"
)

// everyKind is a valid file with one operation of each kind.
const everyKind = `description = "every kind"

[[operation]]
kind = "add-settings"
keys = ["settings.ntp", 'settings.kernel.sysctl."vm.swappiness"']

[[operation]]
kind = "remove-settings"
keys = ["settings.motd"]

[[operation]]
kind = "move"
from = "settings.network.hostname"
to = "settings.network.name"

[[operation]]
kind = "replace-value"
key = "settings.updates.seed"
map = [{old = 1, new = 2}, {old = 2, new = 1}]

[[operation]]
kind = "replace-template"
key = "configuration-files.motd"
old = "a"
new = "b"

[[operation]]
kind = "replace-generator"
key = "settings.updates.seed"
old = "gen"
new = "gen2"
regenerate = true

[[operation]]
kind = "add-metadata"
key = "settings.motd"
meta = "affected-services"
value = ["motd"]

[[operation]]
kind = "remove-metadata"
key = "settings.motd"
meta = "affected-services"

[[operation]]
kind = "replace-metadata"
key = "settings.network"
meta = "affected-services"
old = ["network"]
new = ["network", "hostname"]

[[operation]]
kind = "function"
name = "shout-motd"
`

func TestParseEveryKind(t *testing.T) {
	t.Parallel()
	m, err := Parse("every.toml", []byte(everyKind))
	if err != nil {
		t.Fatal(err)
	}
	if m.Description != "every kind" || len(m.Operations) != len(Kinds()) {
		t.Fatalf("parsed %d operations, description %q", len(m.Operations), m.Description)
	}
	seen := map[Kind]bool{}
	for _, op := range m.Operations {
		seen[op.Kind] = true
	}
	if len(seen) != len(Kinds()) {
		t.Fatalf("kinds %v, want every one of %v", seen, Kinds())
	}
	ops := m.Operations
	switch {
	case ops[0].Keys[1].Name() != `settings.kernel.sysctl."vm.swappiness"` || ops[0].Line != 3:
		t.Errorf("add-settings = %+v", ops[0])
	case ops[2].From.Name() != "settings.network.hostname" || ops[2].To.Name() != "settings.network.name":
		t.Errorf("move = %+v", ops[2])
	case len(ops[3].Map) != 2 || string(ops[3].Map[1].Old) != "2" || string(ops[3].Map[1].New) != "1":
		t.Errorf("replace-value map = %q", ops[3].Map)
	case ops[4].Meta.Name() != MetaTemplate || ops[5].Meta.Name() != MetaGenerator || !ops[5].Regenerate:
		t.Errorf("replace-template/generator = %+v %+v", ops[4], ops[5])
	case string(ops[6].Value) != `["motd"]` || ops[6].Meta.Name() != "affected-services":
		t.Errorf("add-metadata = %+v", ops[6])
	case string(ops[8].Map[0].New) != `["network","hostname"]`:
		t.Errorf("replace-metadata = %q", ops[8].Map)
	case ops[9].Function != "shout-motd":
		t.Errorf("function = %+v", ops[9])
	}
	if err := m.Check(testFunctions()); err != nil {
		t.Errorf("Check: %v", err)
	}
	err = m.Check(Builtins())
	if !errors.Is(err, ErrInvalid) || err.Error() != `every.toml: line 52: operation[9] (function).name: unknown migration function "shout-motd" (registered: [])` {
		t.Errorf("Check(Builtins) = %v", err)
	}
}

// TestParseErrors: each bad file is refused with the file, the operation
// (index, kind, line) and the field named.
func TestParseErrors(t *testing.T) {
	t.Parallel()
	op := func(body string) string { return "[[operation]]\n" + body + "\n" }
	for _, tc := range []struct {
		name, file, want string
	}{
		{"toml syntax", "[[operation]\n", "m.toml: line 2: TOML: "},
		{"no operations", `description = "x"`, "m.toml: no operations: add [[operation]] tables"},
		{"empty inline operations", `operation = []`, "m.toml: no operations"},
		{"operation not tables", `operation = "x"`, `m.toml: operation: expected an array of tables ([[operation]]), got a string`},
		{"unknown top key", `descripton = "x"` + "\n" + op(`kind = "function"`+"\n"+`name = "f"`), `m.toml: unknown key "descripton" (expected description, operation)`},
		{"description type", "description = 1\n" + op(`kind = "function"`+"\n"+`name = "f"`), "m.toml: description: expected a string, got a number"},
		{"missing kind", op(`keys = ["settings.a"]`), "m.toml: line 1: operation[0].kind: missing (one of add-metadata, add-settings, function, move, "},
		{"unknown kind", op(`kind = "rename"`), `m.toml: line 1: operation[0].kind: unknown kind "rename" (expected one of add-metadata, `},
		{"unknown field", op(`kind = "move"` + "\n" + `from = "settings.a"` + "\n" + `to = "settings.b"` + "\n" + `too = 1`),
			`m.toml: line 1: operation[0] (move): unknown field "too" (a move operation takes from, to)`},
		{"missing field", op(`kind = "move"` + "\n" + `from = "settings.a"`), "m.toml: line 1: operation[0] (move).to: missing"},
		{"second operation", op(`kind = "function"`+"\n"+`name = "f"`) + op(`kind = "add-settings"`+"\n"+`keys = []`),
			"m.toml: line 4: operation[1] (add-settings).keys: expected a non-empty list of keys, got a list"},
		{"bad key", op(`kind = "remove-settings"` + "\n" + `keys = ["settings..a"]`),
			`m.toml: line 1: operation[0] (remove-settings).keys[0]: invalid key "settings..a": empty key segment`},
		{"overlapping keys", op(`kind = "remove-settings"` + "\n" + `keys = ["settings.a", "settings.a.b"]`),
			"operation[0] (remove-settings).keys[1]: settings.a.b overlaps settings.a"},
		{"move onto itself", op(`kind = "move"` + "\n" + `from = "settings.a"` + "\n" + `to = "settings.a"`),
			"operation[0] (move).to: is the same key as from"},
		{"move inside itself", op(`kind = "move"` + "\n" + `from = "settings.a"` + "\n" + `to = "settings.a.b"`),
			"operation[0] (move).to: settings.a and settings.a.b overlap: one is inside the other"},
		{"meta key with dots", op(`kind = "remove-metadata"` + "\n" + `key = "settings.a"` + "\n" + `meta = "a.b"`),
			"operation[0] (remove-metadata).meta: invalid key \"a.b\": metadata keys must have exactly one segment"},
		{"old without new", op(`kind = "replace-value"` + "\n" + `key = "settings.a"` + "\n" + `old = "x"`),
			"operation[0] (replace-value): needs old and new, or map"},
		{"old and map", op(`kind = "replace-value"` + "\n" + `key = "settings.a"` + "\n" + `old = "x"` + "\n" + `new = "y"` + "\n" + `map = [{old = "a", new = "b"}]`),
			"operation[0] (replace-value).map: give either old and new or map, not both"},
		{"no change", op(`kind = "replace-value"` + "\n" + `key = "settings.a"` + "\n" + `old = "x"` + "\n" + `new = "x"`),
			`operation[0] (replace-value).new: is the same value as old ("x")`},
		{"lossy map", op(`kind = "replace-value"` + "\n" + `key = "settings.a"` + "\n" + `map = [{old = "a", new = "c"}, {old = "b", new = "c"}]`),
			`m.toml: line 1: operation[0] (replace-value).map[1].new: lossy: "a" and "b" would both become "c", so backward could not tell which to restore`},
		{"ambiguous map", op(`kind = "replace-value"` + "\n" + `key = "settings.a"` + "\n" + `map = [{old = "a", new = "b"}, {old = "a", new = "c"}]`),
			`operation[0] (replace-value).map[1].old: "a" is already replaced by map[0].old`},
		{"map pair field", op(`kind = "replace-value"` + "\n" + `key = "settings.a"` + "\n" + `map = [{old = "a", neww = "b"}]`),
			`operation[0] (replace-value).map[0]: unknown field "neww" (expected old, new)`},
		{"template not a string", op(`kind = "replace-template"` + "\n" + `key = "settings.a"` + "\n" + `old = 1` + "\n" + `new = "b"`),
			"operation[0] (replace-template).old: expected a string, got a number"},
		{"table value", op(`kind = "add-metadata"` + "\n" + `key = "settings.a"` + "\n" + `meta = "m"` + "\n" + `value = {a = 1}`),
			"operation[0] (add-metadata).value: a table cannot be one value"},
		{"date value", op(`kind = "add-metadata"` + "\n" + `key = "settings.a"` + "\n" + `meta = "m"` + "\n" + `value = 2024-01-01`),
			"operation[0] (add-metadata).value: a date or time cannot be stored"},
		{"nested list", op(`kind = "replace-value"` + "\n" + `key = "settings.a"` + "\n" + `old = [[1]]` + "\n" + `new = [2]`),
			"operation[0] (replace-value).old: list element 0: lists may hold only strings, numbers and booleans"},
		{"regenerate type", op(`kind = "replace-generator"` + "\n" + `key = "settings.a"` + "\n" + `old = "a"` + "\n" + `new = "b"` + "\n" + `regenerate = "yes"`),
			"operation[0] (replace-generator).regenerate: expected true or false, got a string"},
		{"function name", op(`kind = "function"` + "\n" + `name = "Shout"`),
			`operation[0] (function).name: expected lower-case letters, digits and '-', got "Shout"`},
		{"two replacements of one value", op(`kind = "replace-value"`+"\n"+`key = "settings.a"`+"\n"+`old = "a"`+"\n"+`new = "c"`) +
			op(`kind = "replace-value"`+"\n"+`key = "settings.a"`+"\n"+`old = "b"`+"\n"+`new = "c"`),
			"m.toml: line 6: operation[1] (replace-value).key: settings.a is replaced by operation[0] too: put every replacement of one value in one map"},
		{"too big", strings.Repeat("#", MaxSize+1), "m.toml: 1048577 bytes, more than the limit of 1048576"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("m.toml", []byte(tc.file))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v\nwant an error containing %q", err, tc.want)
			}
		})
	}
}

// TestParseReportsEveryProblem: one error lists every problem, one line
// each.
func TestParseReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := Parse("m.toml", []byte("[[operation]]\nkind = \"move\"\n[[operation]]\nkind = \"function\"\nname = 3\n"))
	var e *Error
	if !errors.As(err, &e) || len(e.Problems) != 3 {
		t.Fatalf("Parse = %v, want 3 problems", err)
	}
	want := "m.toml: line 1: operation[0] (move).from: missing\nm.toml: line 1: operation[0] (move).to: missing\n" +
		"m.toml: line 3: operation[1] (function).name: expected a string, got a number"
	if err.Error() != want {
		t.Fatalf("error:\n%s\nwant:\n%s", err, want)
	}
}

// FuzzParse: Parse never panics, and whatever it accepts runs forward and
// then backward over baseData and gives it back exactly (or fails
// forward, as a move to a key too long does).
func FuzzParse(f *testing.F) {
	f.Add([]byte(everyKind))
	for _, tc := range opCases() {
		f.Add([]byte("[[operation]]\n" + tc.ops + "\n"))
	}
	f.Add([]byte("[[operation]]\nkind = \"move\"\nfrom = \"settings.network\"\nto = \"settings.motd\"\n" +
		"[[operation]]\nkind = \"remove-settings\"\nkeys = [\"settings.motd.hostname\"]\n"))
	f.Add([]byte(`operation = [{kind = "replace-value", key = "settings.updates.seed", old = 42, new = 43}]`))
	base := parseData(f, baseData)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse("fuzz.toml", data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || len(e.Problems) == 0 {
				t.Fatalf("Parse error %v is not an *Error with problems", err)
			}
			return
		}
		if len(m.Operations) == 0 {
			t.Fatal("accepted a migration without operations")
		}
		fns := testFunctions()
		if m.Check(fns) != nil {
			return
		}
		d := parseData(t, baseData)
		saves := Saves{}
		if err := Apply(d, saves, []*Migration{m}, Forward, fns); err != nil {
			return
		}
		if err := Apply(d, saves, []*Migration{m}, Backward, fns); err != nil {
			t.Fatalf("backward after a forward failed: %v", err)
		}
		if diff := Diff(base, d); diff != "" {
			t.Fatalf("forward then backward of\n%s\ndiffers: %s", data, diff)
		}
	})
}
