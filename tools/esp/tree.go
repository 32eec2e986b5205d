package esp

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf16"
)

// node is a file or directory of the tree to write.
type node struct {
	name     string
	dir      bool
	children []*node // directories only, sorted by name
	file     int     // index into the files slice (files only)
	short    [11]byte
	long     bool // needs long-name entries
	cluster  uint32
	clusters uint32
	size     uint32 // files only
}

// buildTree checks the paths and arranges them as a tree; every problem is
// reported at once.
func buildTree(files []File) (*node, error) {
	root := &node{dir: true}
	var errs []error
	for i, f := range files {
		parts := strings.Split(f.Path, "/")
		if err := checkPath(f.Path, parts); err != nil {
			errs = append(errs, err)
			continue
		}
		cur := root
		for j, name := range parts {
			last := j == len(parts)-1
			var child *node
			for _, c := range cur.children {
				if strings.EqualFold(c.name, name) {
					child = c
				}
			}
			switch {
			case child == nil:
				child = &node{name: name, dir: !last, file: i}
				cur.children = append(cur.children, child)
			case last || !child.dir:
				errs = append(errs, fmt.Errorf("file %q: %q already exists (names are case-insensitive)", f.Path, strings.Join(parts[:j+1], "/")))
			}
			cur = child
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	root.assignShortNames()
	return root, nil
}

func checkPath(path string, parts []string) error {
	for _, p := range parts {
		switch {
		case p == "" || p == "." || p == "..":
			return fmt.Errorf("file %q: empty, \".\" or \"..\" path component", path)
		case strings.ContainsAny(p, "\"*:<>?\\|") || strings.IndexFunc(p, func(r rune) bool { return r < 0x20 }) >= 0:
			return fmt.Errorf("file %q: component %q has a character FAT does not allow", path, p)
		case len(utf16.Encode([]rune(p))) > 255:
			return fmt.Errorf("file %q: component longer than 255 UTF-16 units", path)
		case strings.HasSuffix(p, " ") || strings.HasSuffix(p, "."):
			return fmt.Errorf("file %q: component %q ends in a space or dot", path, p)
		}
	}
	return nil
}

// shortChars are the characters allowed in a short name besides A–Z, 0–9.
const shortChars = "$%'-_@~`!(){}^#&"

func isShortChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(shortChars, c) >= 0
}

// exactShort returns the 11-byte form of name if it is already a valid
// upper-case 8.3 name.
func exactShort(name string) ([11]byte, bool) {
	var s [11]byte
	base, ext, _ := strings.Cut(name, ".")
	if len(base) == 0 || len(base) > 8 || len(ext) > 3 || strings.Contains(ext, ".") || (ext == "" && strings.HasSuffix(name, ".")) {
		return s, false
	}
	for i := 0; i < len(base); i++ {
		if !isShortChar(base[i]) {
			return s, false
		}
	}
	for i := 0; i < len(ext); i++ {
		if !isShortChar(ext[i]) {
			return s, false
		}
	}
	copy(s[:], strings.Repeat(" ", 11))
	copy(s[:8], base)
	copy(s[8:], ext)
	return s, true
}

// squeeze keeps the valid short-name characters of s, upper-cased.
func squeeze(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		if r < 0x80 && isShortChar(byte(r)) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// assignShortNames sorts every directory and gives each entry a unique
// short name: the name itself when it is upper-case 8.3, else a "BASE~N"
// alias with long-name entries, as Windows and mtools do.
func (n *node) assignShortNames() {
	sort.Slice(n.children, func(i, j int) bool { return n.children[i].name < n.children[j].name })
	used := map[[11]byte]bool{}
	for _, c := range n.children {
		if s, ok := exactShort(c.name); ok {
			c.short = s
			used[s] = true
		}
	}
	for _, c := range n.children {
		if _, ok := exactShort(c.name); ok {
			continue
		}
		c.long = true
		base, ext := c.name, ""
		if i := strings.LastIndexByte(c.name, '.'); i > 0 {
			base, ext = c.name[:i], c.name[i+1:]
		}
		base, ext = squeeze(base), squeeze(ext)
		if len(ext) > 3 {
			ext = ext[:3]
		}
		if base == "" {
			base = "_"
		}
		for k := 1; ; k++ {
			tail := fmt.Sprintf("~%d", k)
			b := base
			if len(b) > 8-len(tail) {
				b = b[:8-len(tail)]
			}
			var s [11]byte
			copy(s[:], strings.Repeat(" ", 11))
			copy(s[:8], b+tail)
			copy(s[8:], ext)
			if !used[s] {
				c.short = s
				used[s] = true
				break
			}
		}
	}
	for _, c := range n.children {
		if c.dir {
			c.assignShortNames()
		}
	}
}

// entrySlots is how many 32-byte entries c takes in its directory.
func (c *node) entrySlots() int {
	if !c.long {
		return 1
	}
	return 1 + (len(utf16.Encode([]rune(c.name)))+12)/13
}
