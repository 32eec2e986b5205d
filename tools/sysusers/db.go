package sysusers

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// user is one line of a passwd file.
type user struct {
	name               string
	uid, gid           uint32
	gecos, home, shell string
	raw                string // the line as read; "" for a new user
}

// line returns the passwd line of u, without a newline.
func (u *user) line() string {
	if u.raw != "" {
		return u.raw
	}
	return fmt.Sprintf("%s:x:%d:%d:%s:%s:%s", u.name, u.uid, u.gid, u.gecos, u.home, u.shell)
}

// group is one line of a group file.
type group struct {
	name     string
	password string
	gid      uint32
	members  []string
	raw      string // the line as read; "" for a new group
	dirty    bool   // members were added: the line is written anew
}

// line returns the group line of g, without a newline.
func (g *group) line() string {
	if g.raw != "" && !g.dirty {
		return g.raw
	}
	return fmt.Sprintf("%s:%s:%d:%s", g.name, g.password, g.gid, strings.Join(g.members, ","))
}

// parsePasswd parses a passwd file read from path. Every line must be an
// entry "NAME:PASSWORD:UID:GID:GECOS:HOME:SHELL"; names must be unique.
func parsePasswd(path string, data []byte) ([]*user, error) {
	var users []*user
	seen := make(map[string]int)
	err := eachLine(path, data, 7, "NAME:PASSWORD:UID:GID:GECOS:HOME:SHELL", func(n int, f []string) string {
		u := &user{name: f[0], gecos: f[4], home: f[5], shell: f[6], raw: strings.Join(f, ":")}
		var ok bool
		if u.uid, ok = parseDBID(f[2]); !ok {
			return fmt.Sprintf("UID %q of user %q is not valid, want a number below 4294967295", f[2], u.name)
		}
		if u.gid, ok = parseDBID(f[3]); !ok {
			return fmt.Sprintf("GID %q of user %q is not valid, want a number below 4294967295", f[3], u.name)
		}
		if first, dup := seen[u.name]; dup {
			return fmt.Sprintf("user %q is already defined in line %d", u.name, first)
		}
		seen[u.name] = n
		users = append(users, u)
		return ""
	})
	return users, err
}

// parseGroupFile parses a group file read from path. Every line must be an
// entry "NAME:PASSWORD:GID:MEMBERS"; names must be unique.
func parseGroupFile(path string, data []byte) ([]*group, error) {
	var groups []*group
	seen := make(map[string]int)
	err := eachLine(path, data, 4, "NAME:PASSWORD:GID:USER,...", func(n int, f []string) string {
		g := &group{name: f[0], password: f[1], raw: strings.Join(f, ":")}
		var ok bool
		if g.gid, ok = parseDBID(f[2]); !ok {
			return fmt.Sprintf("GID %q of group %q is not valid, want a number below 4294967295", f[2], g.name)
		}
		if f[3] != "" {
			g.members = strings.Split(f[3], ",")
			for _, m := range g.members {
				if !validDBName(m) {
					return fmt.Sprintf("member %q of group %q is not a valid user name", m, g.name)
				}
			}
		}
		if first, dup := seen[g.name]; dup {
			return fmt.Sprintf("group %q is already defined in line %d", g.name, first)
		}
		seen[g.name] = n
		groups = append(groups, g)
		return ""
	})
	return groups, err
}

// eachLine splits data into lines of nfields colon-separated fields, checks
// the characters and the name (the first field), and calls parse with the
// line number and fields. It joins the errors of every bad line, where
// parse returns a message saying what is wrong.
func eachLine(path string, data []byte, nfields int, want string, parse func(n int, fields []string) string) error {
	text := strings.TrimSuffix(string(data), "\n")
	if text == "" {
		return nil
	}
	var errs []error
	for i, line := range strings.Split(text, "\n") {
		f := strings.Split(line, ":")
		var msg string
		switch {
		case line == "":
			msg = "empty line, want " + want
		case !utf8.ValidString(line) || hasControl(line):
			msg = fmt.Sprintf("%q has a control character or is not UTF-8", line)
		case len(f) != nfields:
			msg = fmt.Sprintf("%d fields, want %d: %s", len(f), nfields, want)
		case !validDBName(f[0]):
			msg = fmt.Sprintf("name %q is not valid", f[0])
		default:
			msg = parse(i+1, f)
		}
		if msg != "" {
			errs = append(errs, &Error{Path: path, Line: i + 1, Msg: msg})
		}
	}
	return errors.Join(errs...)
}

// parseDBID parses a decimal UID or GID of a passwd or group file.
func parseDBID(s string) (uint32, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0xFFFFFFFF {
		return 0, false
	}
	return uint32(n), true
}

// validDBName reports whether s is a valid name in a passwd or group file
// by systemd's relaxed rules (valid_user_group_name with
// VALID_USER_RELAX), which accept names that other tools created. The
// caller has checked for control characters, ":" and UTF-8.
func validDBName(s string) bool {
	numeric := func(x string) bool { return strings.Trim(x, "0123456789") == "" }
	return s != "" && s != "." && s != ".." &&
		strings.TrimSpace(s) == s &&
		!strings.ContainsAny(s, "/,") &&
		!numeric(s) && !(s[0] == '-' && numeric(s[1:]))
}

// addMember adds name to the members of g, keeping them sorted as
// systemd-sysusers does, and reports whether it was missing.
func (g *group) addMember(name string) bool {
	if slices.Contains(g.members, name) {
		return false
	}
	g.members = append(g.members, name)
	slices.Sort(g.members)
	g.members = slices.Compact(g.members)
	g.dirty = true
	return true
}
