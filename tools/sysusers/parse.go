package sysusers

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Type is the type of a sysusers.d line: its first field.
type Type byte

// The supported line types.
const (
	User   Type = 'u' // create a user, and its group unless one is named
	Group  Type = 'g' // create a group
	Member Type = 'm' // add a user to a group
)

// An ID is a requested user or group ID. The zero ID is not set: Apply
// allocates one.
type ID struct {
	n   uint32
	set bool
}

// FixedID returns the ID n.
func FixedID(n uint32) ID { return ID{n: n, set: true} }

// Value returns the ID and whether it is set.
func (id ID) Value() (uint32, bool) { return id.n, id.set }

// String returns the ID in decimal, or "-" when it is not set.
func (id ID) String() string {
	if !id.set {
		return "-"
	}
	return strconv.FormatUint(uint64(id.n), 10)
}

// Entry is one line of a sysusers.d file.
type Entry struct {
	Type Type
	// Name is the user of u and m lines and the group of g lines.
	Name string
	// ID is the UID of a u line or the GID of a g line.
	ID ID
	// GID is the primary group of a u line given by number ("UID:GID").
	GID ID
	// Group is the primary group of a u line given by name
	// ("UID:GROUP"), or the group of an m line.
	Group string
	// GECOS, Home and Shell are the optional fields of a u line, empty
	// when not given.
	GECOS, Home, Shell string
	// File and Line tell where the entry was read.
	File string
	Line int
}

// Error is a problem in one line of a sysusers.d, passwd or group file.
type Error struct {
	Path string
	Line int
	Msg  string
}

// Error returns "path:line: msg".
func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg) }

// maxNameLen is the longest name systemd's strict rules allow: it must fit
// in the utmp user field (UT_NAMESIZE 32, minus the NUL).
const maxNameLen = 31

// wantName describes a valid user or group name in error messages.
const wantName = `want a letter or "_" followed by letters, digits, "_" or "-", at most 31 characters`

// Parse parses the sysusers.d file data, read from name. It reports every
// bad line, joined, as *Error values naming name and the line number.
func Parse(name string, data []byte) ([]Entry, error) {
	var entries []Entry
	var errs []error
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.Trim(line, whitespace)
		if line == "" || line[0] == '#' {
			continue
		}
		e, msg := parseLine(line)
		if msg != "" {
			errs = append(errs, &Error{Path: name, Line: i + 1, Msg: msg})
			continue
		}
		e.File, e.Line = name, i+1
		entries = append(entries, e)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return entries, nil
}

// whitespace separates the fields of a line, as WHITESPACE in systemd.
const whitespace = " \t\n\r"

// maxFields is the number of fields of the longest line type, u.
const maxFields = 6

// parseLine parses one line that is neither blank nor a comment. It
// returns the entry, or a message saying what is wrong.
func parseLine(line string) (Entry, string) {
	fields, msg := splitFields(line)
	if msg != "" {
		return Entry{}, msg
	}
	if len(fields) > maxFields {
		return Entry{}, fmt.Sprintf("trailing garbage %q after the sixth field", fields[maxFields])
	}
	// Specifiers and "-" (empty) are resolved in every field but the type.
	for i := 1; i < len(fields); i++ {
		f, msg := resolveSpecifiers(fields[i])
		if msg != "" {
			return Entry{}, msg
		}
		if f == "-" {
			f = ""
		}
		fields[i] = f
	}
	for len(fields) < maxFields {
		fields = append(fields, "")
	}
	typ, name, id := fields[0], fields[1], fields[2]
	switch typ {
	case "u":
		return parseUser(name, id, fields[3], fields[4], fields[5])
	case "g":
		if msg := checkUnused(typ, fields[3:]); msg != "" {
			return Entry{}, msg
		}
		return parseGroup(name, id)
	case "m":
		if msg := checkUnused(typ, fields[3:]); msg != "" {
			return Entry{}, msg
		}
		return parseMember(name, id)
	case "r":
		return Entry{}, `"r" lines (ID ranges) are not supported: IDs are allocated from 999 downwards`
	default:
		return Entry{}, fmt.Sprintf(`unknown line type %q, want "u", "g" or "m"`, typ)
	}
}

// checkUnused reports a GECOS, home or shell field on a g or m line.
func checkUnused(typ string, rest []string) string {
	for i, what := range []string{"GECOS", "home directory", "shell"} {
		if rest[i] != "" {
			return fmt.Sprintf("%q lines take no %s field, got %q", typ, what, rest[i])
		}
	}
	return ""
}

// parseUser parses the fields of a u line.
func parseUser(name, id, gecos, home, shell string) (Entry, string) {
	e := Entry{Type: User, Name: name, GECOS: gecos, Home: home, Shell: shell}
	if name == "" {
		return e, `missing user name, want "u NAME [ID [GECOS [HOME [SHELL]]]]"`
	}
	if !validName(name) {
		return e, fmt.Sprintf("user name %q is not valid: %s", name, wantName)
	}
	if strings.HasPrefix(id, "/") {
		return e, fmt.Sprintf(`ID %q: path-valued IDs are not supported, want "-", UID, UID:GID or UID:GROUP`, id)
	}
	uid, gid, hasGID := strings.Cut(id, ":")
	if uid != "" && uid != "-" {
		n, ok := parseID(uid)
		if !ok {
			return e, fmt.Sprintf(`UID %q in %q is not valid, want "-" or a number from 0 to 4294967294 other than 65535`, uid, id)
		}
		e.ID = FixedID(n)
	} else if uid == "" && hasGID {
		return e, fmt.Sprintf(`missing UID before ":" in %q, want "-" or a number`, id)
	}
	if hasGID {
		if n, ok := parseID(gid); ok {
			e.GID = FixedID(n)
		} else if validName(gid) {
			e.Group = gid
		} else {
			return e, fmt.Sprintf(`GID %q in %q is not valid, want a number from 0 to 4294967294 other than 65535 or a group name`, gid, id)
		}
	}
	if gecos != "" && !validGECOS(gecos) {
		return e, fmt.Sprintf("GECOS %q is not valid: want UTF-8 without control characters or %q", gecos, ":")
	}
	if home != "" && !validPath(home) {
		return e, fmt.Sprintf("home directory %q is not valid, want a normalized absolute path", home)
	}
	if shell != "" && !validPath(shell) {
		return e, fmt.Sprintf("shell %q is not valid, want a normalized absolute path", shell)
	}
	return e, ""
}

// parseGroup parses the name and ID fields of a g line.
func parseGroup(name, id string) (Entry, string) {
	e := Entry{Type: Group, Name: name}
	if name == "" {
		return e, `missing group name, want "g NAME [GID]"`
	}
	if !validName(name) {
		return e, fmt.Sprintf("group name %q is not valid: %s", name, wantName)
	}
	if strings.HasPrefix(id, "/") {
		return e, fmt.Sprintf(`GID %q: path-valued IDs are not supported, want "-" or a number`, id)
	}
	if id != "" {
		n, ok := parseID(id)
		if !ok {
			return e, fmt.Sprintf(`GID %q is not valid, want "-" or a number from 0 to 4294967294 other than 65535`, id)
		}
		e.ID = FixedID(n)
	}
	return e, ""
}

// parseMember parses the user and group fields of an m line.
func parseMember(user, group string) (Entry, string) {
	e := Entry{Type: Member, Name: user, Group: group}
	switch {
	case user == "":
		return e, `missing user name, want "m USER GROUP"`
	case !validName(user):
		return e, fmt.Sprintf("user name %q is not valid: %s", user, wantName)
	case group == "":
		return e, `missing group name, want "m USER GROUP"`
	case !validName(group):
		return e, fmt.Sprintf("group name %q is not valid: %s", group, wantName)
	}
	return e, ""
}

// splitFields splits a line into fields like systemd's extract_many_words
// with EXTRACT_UNQUOTE: fields are separated by whitespace; single and
// double quotes group characters, also inside a field (a"b c" is one field
// "ab c"), and "" is an empty field; a backslash takes the next character
// literally. It returns a message for an unterminated quote or a trailing
// backslash.
func splitFields(line string) ([]string, string) {
	var fields []string
	var b strings.Builder
	inField := false
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\\':
			if i+1 == len(line) {
				return nil, "backslash at the end of the line, want a character after it"
			}
			i++
			b.WriteByte(line[i])
			inField = true
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				b.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote = c
			inField = true
		case strings.IndexByte(whitespace, c) >= 0:
			if inField {
				fields = append(fields, b.String())
				b.Reset()
				inField = false
			}
		default:
			b.WriteByte(c)
			inField = true
		}
	}
	if quote != 0 {
		return nil, fmt.Sprintf("unterminated %c quote, want a closing %c", quote, quote)
	}
	if inField {
		fields = append(fields, b.String())
	}
	return fields, ""
}

// resolveSpecifiers replaces "%%" by "%" and rejects any other specifier.
func resolveSpecifiers(s string) (string, string) {
	if !strings.Contains(s, "%") {
		return s, ""
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		spec := s[i:min(i+2, len(s))]
		return "", fmt.Sprintf("specifier %q in %q is not supported, want %q for a literal %%", spec, s, "%%")
	}
	return b.String(), ""
}

// parseID parses a decimal UID or GID. Like systemd it rejects
// 4294967295 and 65535, which libc APIs use as "no ID".
func parseID(s string) (uint32, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0xFFFFFFFF || n == 0xFFFF {
		return 0, false
	}
	return uint32(n), true
}

// validName reports whether s is a valid user or group name by systemd's
// strict rules (valid_user_group_name without VALID_USER_RELAX), which
// systemd-sysusers applies to the names it creates.
func validName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '-')) {
			return false
		}
	}
	return true
}

// validGECOS reports whether s is a valid GECOS field: UTF-8 without
// control characters or colons.
func validGECOS(s string) bool {
	return utf8.ValidString(s) && !hasControl(s) && !strings.Contains(s, ":")
}

// validPath reports whether s is a valid home directory or shell: an
// absolute, normalized path that is also a valid GECOS field.
func validPath(s string) bool {
	return validGECOS(s) && path.IsAbs(s) && path.Clean(s) == s
}

// hasControl reports whether s has an ASCII control character.
func hasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7F {
			return true
		}
	}
	return false
}
