package settings

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrInvalid is matched by every *ValidationError.
var ErrInvalid = errors.New("invalid settings")

// Problem is one thing wrong with a settings document.
type Problem struct {
	Path string // dotted key path, e.g. settings.network.hostname
	Msg  string // what was expected, e.g. "expected a string, got number"
}

func (p Problem) String() string { return p.Path + ": " + p.Msg }

// ValidationError lists every problem found, sorted by path.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

// Is makes a *ValidationError match ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// problems collects Problems during a walk.
type problems struct{ list []Problem }

func (ps *problems) add(path []string, format string, args ...any) {
	ps.list = append(ps.list, Problem{Path: JoinPath(path), Msg: fmt.Sprintf(format, args...)})
}

func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	sort.SliceStable(ps.list, func(i, j int) bool { return ps.list[i].Path < ps.list[j].Path })
	return &ValidationError{Problems: ps.list}
}

// JoinPath joins key segments with dots, quoting a segment that contains a
// dot as the datastore does: settings.kernel.sysctl."net.ipv4.ip_forward".
func JoinPath(segs []string) string {
	var b strings.Builder
	for i, s := range segs {
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

func with(path []string, seg string) []string {
	return append(append(make([]string, 0, len(path)+1), path...), seg)
}

// typeName names a decoded JSON or TOML value's type for messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case map[string]any:
		return "table"
	case []any, []map[string]any:
		return "list"
	}
	if _, ok := asNumber(v); ok {
		return "number"
	}
	return fmt.Sprintf("%T", v)
}
