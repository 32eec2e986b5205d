package manifest

import (
	"fmt"
	"strconv"
	"strings"
)

// Version is a semantic version, MAJOR.MINOR.PATCH with an optional
// pre-release and build metadata (https://semver.org/).
type Version struct {
	Major, Minor, Patch uint64
	// Pre is the pre-release, without its "-"; Build the build metadata,
	// without its "+". Build does not take part in Compare.
	Pre, Build string
}

// ParseVersion parses a semantic version. A leading "v" is accepted, as
// upstream's version-lock setting does ("v1.2.3").
func ParseVersion(s string) (Version, error) {
	var v Version
	rest := strings.TrimPrefix(s, "v")
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		v.Build, rest = rest[i+1:], rest[:i]
		if !identifiers(v.Build, false) {
			return Version{}, fmt.Errorf("version %q: bad build metadata %q", s, v.Build)
		}
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		v.Pre, rest = rest[i+1:], rest[:i]
		if !identifiers(v.Pre, true) {
			return Version{}, fmt.Errorf("version %q: bad pre-release %q", s, v.Pre)
		}
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return Version{}, fmt.Errorf("version %q: expected MAJOR.MINOR.PATCH such as \"1.2.3\"", s)
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || (len(p) > 1 && p[0] == '0') {
			return Version{}, fmt.Errorf("version %q: %q is not a number without leading zeros", s, p)
		}
		*[]*uint64{&v.Major, &v.Minor, &v.Patch}[i] = n
	}
	return v, nil
}

// MustParseVersion is ParseVersion for constants; it panics on error.
func MustParseVersion(s string) Version {
	v, err := ParseVersion(s)
	if err != nil {
		panic(err)
	}
	return v
}

// identifiers reports whether s is a dot-separated list of non-empty
// [0-9A-Za-z-] identifiers; numeric ones without leading zeros if strict.
func identifiers(s string, strict bool) bool {
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		numeric := true
		for _, c := range id {
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				numeric = false
			default:
				return false
			}
		}
		if strict && numeric && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

// String returns the version in its canonical form, without a "v".
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Pre != "" {
		s += "-" + v.Pre
	}
	if v.Build != "" {
		s += "+" + v.Build
	}
	return s
}

// Compare returns -1, 0 or +1 as v has lower, equal or higher precedence
// than w; build metadata is ignored.
func (v Version) Compare(w Version) int {
	for _, c := range [][2]uint64{{v.Major, w.Major}, {v.Minor, w.Minor}, {v.Patch, w.Patch}} {
		if c[0] != c[1] {
			return cmpInt(c[0], c[1])
		}
	}
	switch {
	case v.Pre == w.Pre:
		return 0
	case v.Pre == "":
		return 1
	case w.Pre == "":
		return -1
	}
	a, b := strings.Split(v.Pre, "."), strings.Split(w.Pre, ".")
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := comparePre(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmpInt(uint64(len(a)), uint64(len(b)))
}

// comparePre orders pre-release identifiers: numbers numerically and
// below alphanumerics, which compare as ASCII.
func comparePre(a, b string) int {
	na, ea := strconv.ParseUint(a, 10, 64)
	nb, eb := strconv.ParseUint(b, 10, 64)
	switch {
	case ea == nil && eb == nil:
		return cmpInt(na, nb)
	case ea == nil:
		return -1
	case eb == nil:
		return 1
	}
	return strings.Compare(a, b)
}

func cmpInt(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Less reports whether v has lower precedence than w.
func (v Version) Less(w Version) bool { return v.Compare(w) < 0 }

// MarshalText writes the canonical form.
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText parses a version strictly (no leading "v").
func (v *Version) UnmarshalText(b []byte) error {
	if len(b) > 0 && b[0] == 'v' {
		return fmt.Errorf("version %q: expected MAJOR.MINOR.PATCH without a leading v", b)
	}
	p, err := ParseVersion(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}
