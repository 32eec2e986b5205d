package datastore

import (
	"errors"
	"fmt"
	"strings"
)

// MaxKeyNameLength is the longest dotted key name accepted, in bytes,
// including quotes (upstream MAX_KEY_NAME_LENGTH).
const MaxKeyNameLength = 255

// maxEncodedSegment bounds one percent-encoded segment so that a segment,
// a metadata suffix and a temp-file prefix fit in a 255-byte file name.
const maxEncodedSegment = 200

// KeyType tells data keys from metadata keys.
type KeyType int

const (
	// DataKey names a setting value, e.g. settings.motd.
	DataKey KeyType = iota
	// MetaKey names a metadata attribute, e.g. affected-services. It has
	// exactly one segment.
	MetaKey
)

func (t KeyType) String() string {
	if t == MetaKey {
		return "metadata key"
	}
	return "data key"
}

// ErrInvalidKey is matched (errors.Is) by every *KeyError.
var ErrInvalidKey = errors.New("invalid key")

// KeyError reports why a key name was rejected.
type KeyError struct {
	Name   string
	Reason string
}

func (e *KeyError) Error() string { return fmt.Sprintf("invalid key %q: %s", e.Name, e.Reason) }

// Is makes errors.Is(err, ErrInvalidKey) true.
func (e *KeyError) Is(target error) bool { return target == ErrInvalidKey }

// Key is a parsed, validated datastore key. Two keys are equal when their
// type and segments are equal; Name is the canonical dotted form, in which a
// segment is quoted only when it contains a dot. The zero Key is invalid.
type Key struct {
	typ      KeyType
	name     string
	segments []string
}

// Type returns the key type.
func (k Key) Type() KeyType { return k.typ }

// Name returns the canonical dotted name.
func (k Key) Name() string { return k.name }

// String returns the canonical dotted name.
func (k Key) String() string { return k.name }

// Segments returns a copy of the unquoted segments.
func (k Key) Segments() []string { return append([]string(nil), k.segments...) }

// Equal reports whether two keys have the same type and segments.
func (k Key) Equal(o Key) bool {
	if k.typ != o.typ || len(k.segments) != len(o.segments) {
		return false
	}
	for i := range k.segments {
		if k.segments[i] != o.segments[i] {
			return false
		}
	}
	return true
}

// HasPrefix reports whether the dotted name starts with prefix. Like
// upstream, this is a plain string comparison, so "settings.mot" matches
// "settings.motd".
func (k Key) HasPrefix(prefix string) bool { return strings.HasPrefix(k.name, prefix) }

func validSegmentChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '/'
}

// ParseKey parses a dotted key name. Segments may contain [A-Za-z0-9_-/];
// a segment holding dots is written in double quotes: a."b.c".d.
func ParseKey(typ KeyType, name string) (Key, error) {
	bad := func(reason string) (Key, error) { return Key{}, &KeyError{Name: name, Reason: reason} }
	if name == "" {
		return bad("cannot be empty")
	}
	if len(name) > MaxKeyNameLength {
		return bad(fmt.Sprintf("longer than %d bytes", MaxKeyNameLength))
	}
	var (
		segments []string
		cur      strings.Builder
		quoted   bool
		lastSep  bool
	)
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '"':
			quoted = !quoted
			lastSep = false
		case c == '.' && !quoted:
			if cur.Len() == 0 {
				return bad("empty key segment")
			}
			segments = append(segments, cur.String())
			cur.Reset()
			lastSep = true
		case c == '.' && quoted, validSegmentChar(c):
			cur.WriteByte(c)
			lastSep = false
		default:
			return bad(fmt.Sprintf("invalid character in key: %q", rune(c)))
		}
	}
	if quoted {
		return bad("unbalanced quotes")
	}
	if lastSep {
		return bad("ends with separator")
	}
	if cur.Len() == 0 {
		return bad("empty key segment")
	}
	segments = append(segments, cur.String())
	return KeyFromSegments(typ, segments)
}

// KeyFromSegments builds a key from unquoted segments, checking every rule
// that ParseKey checks.
func KeyFromSegments(typ KeyType, segments []string) (Key, error) {
	name := encodeName(segments)
	bad := func(reason string) (Key, error) { return Key{}, &KeyError{Name: name, Reason: reason} }
	if len(segments) == 0 {
		return bad("cannot be empty")
	}
	if typ == MetaKey && len(segments) != 1 {
		return bad("metadata keys must have exactly one segment")
	}
	if len(name) > MaxKeyNameLength {
		return bad(fmt.Sprintf("longer than %d bytes", MaxKeyNameLength))
	}
	for _, s := range segments {
		if s == "" {
			return bad("empty key segment")
		}
		for i := 0; i < len(s); i++ {
			if c := s[i]; c != '.' && !validSegmentChar(c) {
				return bad(fmt.Sprintf("invalid character in key: %q", rune(c)))
			}
		}
		if len(encodeSegment(s)) > maxEncodedSegment {
			return bad(fmt.Sprintf("segment longer than %d bytes once percent-encoded", maxEncodedSegment))
		}
	}
	return Key{typ: typ, name: name, segments: append([]string(nil), segments...)}, nil
}

// MustKey parses a key and panics on error; for constants in tests and
// callers that pass literals.
func MustKey(typ KeyType, name string) Key {
	k, err := ParseKey(typ, name)
	if err != nil {
		panic(err)
	}
	return k
}

func encodeName(segments []string) string {
	var b strings.Builder
	for i, s := range segments {
		if i > 0 {
			b.WriteByte('.')
		}
		if strings.Contains(s, ".") {
			b.WriteByte('"')
			b.WriteString(s)
			b.WriteByte('"')
		} else {
			b.WriteString(s)
		}
	}
	return b.String()
}

// Append returns a key with one more segment.
func (k Key) Append(segment string) (Key, error) {
	return KeyFromSegments(k.typ, append(k.Segments(), segment))
}

// prefixes returns every key made of the first n segments, shortest first.
func (k Key) prefixes() []Key {
	out := make([]Key, 0, len(k.segments))
	for n := 1; n <= len(k.segments); n++ {
		segs := k.segments[:n]
		out = append(out, Key{typ: k.typ, name: encodeName(segs), segments: segs})
	}
	return out
}
