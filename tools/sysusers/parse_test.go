package sysusers

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	const f = "test.conf"
	for _, tt := range []struct {
		name string
		in   string
		want []Entry // File is set to f by the test
	}{
		{"empty", "", nil},
		{"comments and blank lines", "# comment\n\n   \n\t# indented comment\n", nil},
		{"group dynamic", "g systemd-journal - -", []Entry{
			{Type: Group, Name: "systemd-journal", Line: 1},
		}},
		{"group without id", "g foo", []Entry{{Type: Group, Name: "foo", Line: 1}}},
		{"group fixed", "g adm        4     -", []Entry{
			{Type: Group, Name: "adm", ID: FixedID(4), Line: 1},
		}},
		{"user uid:gid", "u sync 4:65534 - /bin /bin/sync", []Entry{
			{Type: User, Name: "sync", ID: FixedID(4), GID: FixedID(65534), Home: "/bin", Shell: "/bin/sync", Line: 1},
		}},
		{"user uid:group", "u games 5:games", []Entry{
			{Type: User, Name: "games", ID: FixedID(5), Group: "games", Line: 1},
		}},
		{"user dash:group", "u foo -:nogroup", []Entry{
			{Type: User, Name: "foo", Group: "nogroup", Line: 1},
		}},
		{"user quoted GECOS", `u systemd-network - "systemd Network Management"`, []Entry{
			{Type: User, Name: "systemd-network", GECOS: "systemd Network Management", Line: 1},
		}},
		{"user single quotes and escapes", `u a_B-9 7 'it'\''s "x"' /ho\ me`, []Entry{
			{Type: User, Name: "a_B-9", ID: FixedID(7), GECOS: `it's "x"`, Home: "/ho me", Line: 1},
		}},
		{"quotes inside a field", `u foo - a"b c"d`, []Entry{
			{Type: User, Name: "foo", GECOS: "ab cd", Line: 1},
		}},
		{"empty and dash fields", `u foo "" "-" - /bin/sh`, []Entry{
			{Type: User, Name: "foo", Shell: "/bin/sh", Line: 1},
		}},
		{"percent literal", `u foo - "100%% sure"`, []Entry{
			{Type: User, Name: "foo", GECOS: "100% sure", Line: 1},
		}},
		{"member", "m alice adm", []Entry{{Type: Member, Name: "alice", Group: "adm", Line: 1}}},
		{"CRLF and tabs", "g\tfoo\t10\r\nu bar\r\n", []Entry{
			{Type: Group, Name: "foo", ID: FixedID(10), Line: 1},
			{Type: User, Name: "bar", Line: 2},
		}},
		{"line numbers", "# c\n\ng a\n# c\nu b 0\n", []Entry{
			{Type: Group, Name: "a", Line: 3},
			{Type: User, Name: "b", ID: FixedID(0), Line: 5},
		}},
		{"longest name and ID", "u " + strings.Repeat("a", 31) + " 4294967294", []Entry{
			{Type: User, Name: strings.Repeat("a", 31), ID: FixedID(4294967294), Line: 1},
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(f, []byte(tt.in))
			if err != nil {
				t.Fatalf("Parse(%q) error: %v", tt.in, err)
			}
			for i := range tt.want {
				tt.want[i].File = f
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		in   string
		want string // the error, after "bad.conf:LINE: "
	}{
		{"unknown type", "x foo", `unknown line type "x", want "u", "g" or "m"`},
		{"modifier", "u! foo", `unknown line type "u!"`},
		{"r line", "r - 500-900", `"r" lines (ID ranges) are not supported`},
		{"missing name", "u", "missing user name"},
		{"dash name", "g -", "missing group name"},
		{"bad user name", "u 1foo", `user name "1foo" is not valid: want a letter`},
		{"dot in name", "g foo.bar", `group name "foo.bar" is not valid`},
		{"numeric name", "u 123", `user name "123" is not valid`},
		{"long name", "u " + strings.Repeat("a", 32), "is not valid"},
		{"path uid", "u foo /etc/foo", `path-valued IDs are not supported`},
		{"path gid", "g foo /etc/foo", `path-valued IDs are not supported`},
		{"uid too big", "u foo 4294967295", `UID "4294967295" in "4294967295" is not valid`},
		{"uid 65535", "u foo 65535", `UID "65535" in "65535" is not valid`},
		{"negative uid", "u foo -1", `UID "-1" in "-1" is not valid`},
		{"gid too big", "g foo 99999999999", `GID "99999999999" is not valid`},
		{"bad gid in pair", "u foo 5:6:7", `GID "6:7" in "5:6:7" is not valid`},
		{"missing uid in pair", "u foo :7", `missing UID before ":"`},
		{"gecos with colon", `u foo - "a:b"`, `GECOS "a:b" is not valid`},
		{"gecos with control", "u foo - \"a\\\tb\"", `GECOS "a\tb" is not valid`},
		{"relative home", "u foo - - home", `home directory "home" is not valid`},
		{"unclean shell", "u foo - - / /bin/../sh", `shell "/bin/../sh" is not valid`},
		{"trailing garbage", "u foo - - / /bin/sh extra", `trailing garbage "extra"`},
		{"group with gecos", `g foo - "x"`, `"g" lines take no GECOS field, got "x"`},
		{"member with shell", "m a b - - /bin/sh", `"m" lines take no shell field`},
		{"member without group", "m alice", "missing group name, want \"m USER GROUP\""},
		{"member bad group", "m alice a.b", `group name "a.b" is not valid`},
		{"unterminated quote", `u foo "bar`, "unterminated \" quote"},
		{"trailing backslash", `u foo \`, "backslash at the end of the line"},
		{"specifier", "u %u", `specifier "%u" in "%u" is not supported`},
		{"specifier at end", "u foo - 50%", `specifier "%" in "50%" is not supported`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := "# first line\n" + tt.in + "\n"
			got, err := Parse("bad.conf", []byte(in))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", in, got)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "bad.conf:2: ") || !strings.Contains(msg, tt.want) {
				t.Errorf("Parse(%q) error = %q, want bad.conf:2: ...%s...", in, err, tt.want)
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.Path != "bad.conf" || pe.Line != 2 {
				t.Errorf("Parse(%q) error = %#v, want an *Error at bad.conf:2", in, err)
			}
		})
	}
}

// TestParseEveryError checks that Parse reports every bad line, not only
// the first, and no entries.
func TestParseEveryError(t *testing.T) {
	t.Parallel()
	in := "g good\nx bad\ng ok 5\nu 9bad\nr - 1-2\nm only\n"
	got, err := Parse("many.conf", []byte(in))
	if got != nil {
		t.Errorf("Parse returned entries %+v with an error", got)
	}
	var lines []string
	for _, e := range unjoin(err) {
		var pe *Error
		if !errors.As(e, &pe) {
			t.Fatalf("error %v is not an *Error", e)
		}
		lines = append(lines, fmt.Sprintf("%s:%d", pe.Path, pe.Line))
	}
	want := []string{"many.conf:2", "many.conf:4", "many.conf:5", "many.conf:6"}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("Parse(%q) errors at %v, want %v\n%v", in, lines, want, err)
	}
}

// unjoin returns the errors joined in err, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// formatEntry returns a sysusers.d line for e, with every field quoted.
func formatEntry(e Entry) string {
	q := func(s string) string {
		if s == "" {
			return "-"
		}
		s = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%").Replace(s)
		return `"` + s + `"`
	}
	switch e.Type {
	case User:
		id := e.ID.String()
		if n, ok := e.GID.Value(); ok {
			id += fmt.Sprintf(":%d", n)
		} else if e.Group != "" {
			id += ":" + e.Group
		}
		return strings.Join([]string{"u", q(e.Name), q(id), q(e.GECOS), q(e.Home), q(e.Shell)}, " ")
	case Group:
		return strings.Join([]string{"g", q(e.Name), q(e.ID.String())}, " ")
	default:
		return strings.Join([]string{string(rune(e.Type)), q(e.Name), q(e.Group)}, " ")
	}
}

// FuzzParse checks that Parse never panics, that its errors are *Error
// values with the file name and a line of the input, and that the entries
// it returns survive a round trip through formatEntry.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"g adm 4 -\nu sync 4:65534 - /bin /bin/sync\n",
		`u systemd-network - "systemd Network Management"`,
		"m alice adm\nu foo -:nogroup\n# c\n",
		`u a 'b'\"c "d e"f %%`,
		"r - 1-2\nx\nu /x\n",
		"u foo\\",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := Parse("fuzz.conf", data)
		if err != nil {
			if entries != nil {
				t.Fatalf("Parse returned entries and an error")
			}
			nlines := strings.Count(string(data), "\n") + 1
			for _, e := range unjoin(err) {
				var pe *Error
				if !errors.As(e, &pe) || pe.Path != "fuzz.conf" || pe.Line < 1 || pe.Line > nlines || pe.Msg == "" {
					t.Fatalf("error %#v is not an *Error at a line of fuzz.conf", e)
				}
			}
			return
		}
		var lines []string
		for _, e := range entries {
			lines = append(lines, formatEntry(e))
		}
		again, err := Parse("fuzz.conf", []byte(strings.Join(lines, "\n")))
		if err != nil {
			t.Fatalf("Parse of formatted entries %q: %v", lines, err)
		}
		if len(again) != len(entries) {
			t.Fatalf("round trip: %d entries, want %d", len(again), len(entries))
		}
		for i := range again {
			if !sameDecl(again[i], entries[i]) {
				t.Fatalf("round trip of %+v = %+v", entries[i], again[i])
			}
		}
	})
}
