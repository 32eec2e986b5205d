package datastore

import (
	"fmt"
	"path/filepath"
	"strings"
)

const hexDigits = "0123456789ABCDEF"

// encodeSegment percent-encodes everything except [A-Za-z0-9_-], as upstream
// does, so that a path segment never holds '/', '.' or '%' unencoded.
func encodeSegment(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// decodeSegment reverses encodeSegment.
func decodeSegment(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("decode %q: truncated percent escape", s)
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("decode %q: bad percent escape", s)
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), nil
}

// dataPath maps a data key to its file under tree (live or pending/<tx>).
func dataPath(tree string, k Key) string {
	parts := make([]string, 0, len(k.segments)+1)
	parts = append(parts, tree)
	for _, s := range k.segments {
		parts = append(parts, encodeSegment(s))
	}
	return filepath.Join(parts...)
}

// metaPath maps (meta, data) to "<data path>.<meta>" under tree.
func metaPath(tree string, meta, data Key) string {
	return dataPath(tree, data) + "." + encodeSegment(meta.segments[0])
}
