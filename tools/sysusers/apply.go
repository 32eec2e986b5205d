package sysusers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/petrel-os/petrel/sources/outfile"
)

// Paths relative to the root given to Apply.
const (
	confDir    = "usr/lib/sysusers.d"
	factoryEtc = "usr/share/factory/etc"
)

// The range of dynamically allocated IDs: systemd's default system range.
const (
	maxDynamicID = 999
	minDynamicID = 1
)

// Defaults of a new user.
const (
	defaultHome  = "/"
	defaultShell = "/usr/sbin/nologin"
)

// Result lists what Apply added, in the order it was added.
type Result struct {
	Users   []string // new users
	Groups  []string // new groups
	Members []string // new group members, as "user:group"
}

// Apply reads root/usr/lib/sysusers.d/*.conf in lexical order and adds
// the users, groups and group members they declare to
// root/usr/share/factory/etc/passwd and group, which must exist. It
// replaces each file that changes atomically, with mode 0644; when
// nothing is missing it writes nothing. On error neither file is changed.
func Apply(ctx context.Context, root string) (*Result, error) {
	entries, err := readConfDir(ctx, filepath.Join(root, confDir))
	if err != nil {
		return nil, err
	}
	passwdPath := filepath.Join(root, factoryEtc, "passwd")
	groupPath := filepath.Join(root, factoryEtc, "group")
	passwd, err := readRegular(passwdPath)
	if err != nil {
		return nil, err
	}
	group, err := readRegular(groupPath)
	if err != nil {
		return nil, err
	}
	newPasswd, newGroup, res, err := apply(passwdPath, passwd, groupPath, group, entries)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("apply sysusers.d to %s: %w", root, err)
	}
	// The group file first, so that passwd never names a missing group.
	if newGroup != nil {
		if err := outfile.WriteFile(groupPath, newGroup, outfile.Options{}); err != nil {
			return nil, fmt.Errorf("write group file: %w", err)
		}
	}
	if newPasswd != nil {
		if err := outfile.WriteFile(passwdPath, newPasswd, outfile.Options{}); err != nil {
			return nil, fmt.Errorf("write passwd file: %w", err)
		}
	}
	return res, nil
}

// readConfDir parses the *.conf files of dir in lexical order, skipping
// hidden files and files masked by a symbolic link to /dev/null. A
// missing dir holds no entries.
func readConfDir(ctx context.Context, dir string) ([]Entry, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read sysusers.d directory: %w", err)
	}
	var entries []Entry
	var errs []error
	for _, de := range des { // os.ReadDir sorts by name
		name := de.Name()
		if !strings.HasSuffix(name, ".conf") || strings.HasPrefix(name, ".") {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read sysusers.d directory %s: %w", dir, err)
		}
		p := filepath.Join(dir, name)
		if de.Type() == fs.ModeSymlink {
			target, err := os.Readlink(p)
			if err != nil {
				return nil, fmt.Errorf("read sysusers.d file: %w", err)
			}
			if target == "/dev/null" {
				continue
			}
			errs = append(errs, fmt.Errorf("read sysusers.d file %s: a symbolic link to %q, want a regular file or a link to /dev/null", p, target))
			continue
		}
		data, err := readRegular(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		es, err := Parse(p, data)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		entries = append(entries, es...)
	}
	return entries, errors.Join(errs...)
}

// readRegular reads the regular file path; it refuses symbolic links,
// which would point out of the root, and which the atomic rename of a
// changed file would replace.
func readRegular(path string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: %s is a %s, want a regular file", filepath.Base(path), path, fi.Mode().Type())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	return data, nil
}

// apply adds entries to the passwd and group files (their paths are for
// error messages) and returns their new content, nil for a file that does
// not change, and what was added.
func apply(passwdPath string, passwd []byte, groupPath string, group []byte, entries []Entry) (newPasswd, newGroup []byte, res *Result, err error) {
	users, uerr := parsePasswd(passwdPath, passwd)
	groups, gerr := parseGroupFile(groupPath, group)
	if err := errors.Join(uerr, gerr); err != nil {
		return nil, nil, nil, err
	}
	s := newState(users, groups)
	if err := s.apply(entries); err != nil {
		return nil, nil, nil, err
	}
	if len(s.res.Users) > 0 {
		newPasswd = s.passwd()
	}
	if len(s.res.Groups) > 0 || len(s.res.Members) > 0 {
		newGroup = s.group()
	}
	return newPasswd, newGroup, &s.res, nil
}

// state is the user and group database while entries are applied.
type state struct {
	users       []*user
	groups      []*group
	userByName  map[string]*user
	groupByName map[string]*group
	uids        map[uint32]string // UID -> name of the first user with it
	gids        map[uint32]string // GID -> name of the first group with it
	reserved    map[uint32]string // fixed ID -> name of the line requesting it
	next        uint32            // where the search for a free ID starts
	res         Result
}

func newState(users []*user, groups []*group) *state {
	s := &state{
		userByName:  make(map[string]*user),
		groupByName: make(map[string]*group),
		uids:        make(map[uint32]string),
		gids:        make(map[uint32]string),
		reserved:    make(map[uint32]string),
		next:        maxDynamicID,
	}
	for _, u := range users {
		s.addUser(u)
	}
	for _, g := range groups {
		s.addGroup(g)
	}
	return s
}

func (s *state) addUser(u *user) {
	s.users = append(s.users, u)
	s.userByName[u.name] = u
	if _, ok := s.uids[u.uid]; !ok {
		s.uids[u.uid] = u.name
	}
}

func (s *state) addGroup(g *group) {
	s.groups = append(s.groups, g)
	s.groupByName[g.name] = g
	if _, ok := s.gids[g.gid]; !ok {
		s.gids[g.gid] = g.name
	}
}

// passwd returns the content of the passwd file.
func (s *state) passwd() []byte {
	var b strings.Builder
	for _, u := range s.users {
		b.WriteString(u.line())
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// group returns the content of the group file.
func (s *state) group() []byte {
	var b strings.Builder
	for _, g := range s.groups {
		b.WriteString(g.line())
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// lineError returns an *Error for the line of e.
func lineError(e Entry, format string, args ...any) error {
	return &Error{Path: e.File, Line: e.Line, Msg: fmt.Sprintf(format, args...)}
}

// membership is the m lines of one group.
type membership struct {
	group string
	users []Entry // one m line per user
}

// plan is what entries declare, one entry per name, in the order
// systemd-sysusers applies them: the g lines, then the groups of m lines
// that no line declares; the u lines, then the users of m lines that no
// line declares; then the m lines, by group.
type plan struct {
	groups, users []Entry
	members       []*membership
}

// newPlan returns the plan of entries, or the joined errors of the
// entries that conflict with an earlier one.
func newPlan(entries []Entry) (*plan, error) {
	var p plan
	var errs []error
	groupDecl := make(map[string]Entry)
	userDecl := make(map[string]Entry)
	declare := func(decls *[]Entry, byName map[string]Entry, e Entry, what string) {
		first, ok := byName[e.Name]
		if !ok {
			byName[e.Name] = e
			*decls = append(*decls, e)
			return
		}
		if !sameDecl(first, e) {
			errs = append(errs, lineError(e, "%s %q is already declared differently at %s:%d", what, e.Name, first.File, first.Line))
		}
	}
	memberOf := make(map[string]*membership)
	for _, e := range entries {
		switch e.Type {
		case User:
			declare(&p.users, userDecl, e, "user")
		case Group:
			declare(&p.groups, groupDecl, e, "group")
		case Member:
			m := memberOf[e.Group]
			if m == nil {
				m = &membership{group: e.Group}
				memberOf[e.Group] = m
				p.members = append(p.members, m)
			}
			if !containsUser(m.users, e.Name) {
				m.users = append(m.users, e)
			}
		default:
			errs = append(errs, lineError(e, "unknown line type %q", rune(e.Type)))
		}
	}
	// Like systemd's add_implicit.
	for _, m := range p.members {
		for _, e := range m.users {
			if _, ok := userDecl[e.Name]; !ok {
				declare(&p.users, userDecl, Entry{Type: User, Name: e.Name, File: e.File, Line: e.Line}, "user")
			}
		}
		_, isUser := userDecl[m.group]
		if _, isGroup := groupDecl[m.group]; !isGroup && !isUser {
			e := m.users[0]
			declare(&p.groups, groupDecl, Entry{Type: Group, Name: m.group, File: e.File, Line: e.Line}, "group")
		}
	}
	return &p, errors.Join(errs...)
}

// apply applies the plan of entries. It joins the errors of every entry
// that fails.
func (s *state) apply(entries []Entry) error {
	p, err := newPlan(entries)
	if err != nil {
		return err
	}
	var errs []error
	// Dynamic IDs must not take the fixed ID of a later line.
	for _, e := range p.groups {
		if n, ok := e.ID.Value(); ok && s.groupByName[e.Name] == nil {
			s.reserve(n, e.Name)
		}
	}
	for _, e := range p.users {
		if n, ok := e.ID.Value(); ok && s.userByName[e.Name] == nil {
			s.reserve(n, e.Name)
		}
	}
	for _, e := range p.groups {
		if err := s.applyGroup(e); err != nil {
			errs = append(errs, err)
		}
	}
	for _, e := range p.users {
		if err := s.applyUser(e); err != nil {
			errs = append(errs, err)
		}
	}
	for _, m := range p.members {
		g := s.groupByName[m.group]
		if g == nil {
			errs = append(errs, lineError(m.users[0], "group %q does not exist and no g line declares it", m.group))
			continue
		}
		for _, e := range m.users {
			if g.addMember(e.Name) {
				s.res.Members = append(s.res.Members, e.Name+":"+m.group)
			}
		}
	}
	return errors.Join(errs...)
}

// sameDecl reports whether a and b declare the same, wherever they are.
func sameDecl(a, b Entry) bool {
	a.File, a.Line, b.File, b.Line = "", 0, "", 0
	return a == b
}

func containsUser(es []Entry, name string) bool {
	for _, e := range es {
		if e.Name == name {
			return true
		}
	}
	return false
}

// applyGroup creates the group of a g line unless it exists.
func (s *state) applyGroup(e Entry) error {
	if s.groupByName[e.Name] != nil {
		return nil
	}
	gid, fixed := e.ID.Value()
	if fixed {
		if other, used := s.gids[gid]; used {
			return lineError(e, "GID %d of group %q is already used by group %q", gid, e.Name, other)
		}
	} else {
		var ok bool
		if gid, ok = s.allocate(e.Name, s.gidFree); !ok {
			return lineError(e, "no free GID left for group %q in %d-%d", e.Name, minDynamicID, maxDynamicID)
		}
	}
	s.newGroup(e.Name, gid)
	return nil
}

// applyUser creates the user of a u line unless it exists, and its group
// unless the line names one or a group of the user's name exists.
func (s *state) applyUser(e Entry) error {
	if s.userByName[e.Name] != nil {
		return nil
	}
	uid, fixedUID := e.ID.Value()
	if fixedUID {
		if other, used := s.uids[uid]; used {
			return lineError(e, "UID %d of user %q is already used by user %q", uid, e.Name, other)
		}
	}
	var gid uint32
	if n, ok := e.GID.Value(); ok {
		if _, exists := s.gids[n]; !exists {
			return lineError(e, "GID %d of user %q does not exist, want the GID of a group in the group file or of a g line", n, e.Name)
		}
		gid = n
	} else if e.Group != "" {
		g := s.groupByName[e.Group]
		if g == nil {
			return lineError(e, "group %q of user %q does not exist, want a group in the group file or of a g line", e.Group, e.Name)
		}
		gid = g.gid
	} else if g := s.groupByName[e.Name]; g != nil {
		gid = g.gid
	} else {
		switch {
		case fixedUID && s.gidFree(uid, e.Name):
			gid = uid
		default:
			var ok bool
			if gid, ok = s.allocate(e.Name, s.gidFree); !ok {
				return lineError(e, "no free GID left for the group of user %q in %d-%d", e.Name, minDynamicID, maxDynamicID)
			}
		}
		s.newGroup(e.Name, gid)
	}
	if !fixedUID {
		if s.uidFree(gid, e.Name) {
			uid = gid
		} else {
			var ok bool
			if uid, ok = s.allocate(e.Name, s.uidFree); !ok {
				return lineError(e, "no free UID left for user %q in %d-%d", e.Name, minDynamicID, maxDynamicID)
			}
		}
	}
	u := &user{name: e.Name, uid: uid, gid: gid, gecos: e.GECOS, home: e.Home, shell: e.Shell}
	if u.home == "" {
		u.home = defaultHome
	}
	if u.shell == "" {
		u.shell = defaultShell
	}
	s.addUser(u)
	s.res.Users = append(s.res.Users, e.Name)
	return nil
}

func (s *state) newGroup(name string, gid uint32) {
	s.addGroup(&group{name: name, password: "x", gid: gid})
	s.res.Groups = append(s.res.Groups, name)
}

// gidFree reports whether a new group name may get gid: no group has it,
// and no user of another name has it as UID (systemd's gid_is_ok).
func (s *state) gidFree(gid uint32, name string) bool {
	if _, used := s.gids[gid]; used {
		return false
	}
	other, used := s.uids[gid]
	return !used || other == name
}

// uidFree reports whether a new user name may get uid: no user has it,
// and no group of another name has it as GID (systemd's uid_is_ok).
func (s *state) uidFree(uid uint32, name string) bool {
	if _, used := s.uids[uid]; used {
		return false
	}
	other, used := s.gids[uid]
	return !used || other == name
}

// reserve keeps n, the fixed ID of a line for name, from being allocated
// to another name.
func (s *state) reserve(n uint32, name string) {
	if _, ok := s.reserved[n]; !ok {
		s.reserved[n] = name
	}
}

// allocate returns the highest ID free for name by free and not reserved
// for another name, searching down from where the previous search stopped,
// like systemd-sysusers, which searches UIDs and GIDs with one counter.
func (s *state) allocate(name string, free func(uint32, string) bool) (uint32, bool) {
	for s.next >= minDynamicID {
		id := s.next
		s.next--
		if other, ok := s.reserved[id]; ok && other != name {
			continue
		}
		if free(id, name) {
			return id, true
		}
	}
	return 0, false
}
