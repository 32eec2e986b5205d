package spec

import (
	"errors"
	"fmt"
	"strings"
)

// Limits that keep a hostile or broken spec from exhausting memory.
const (
	maxExpandDepth = 32
	maxExpandLen   = 64 << 10
)

// expander expands macros against a set of definitions. Definitions made
// with %define are stored unexpanded and expanded at use, those made with
// %global are expanded when defined, as in rpm.
type expander struct {
	defs map[string]string
	// undefined collects the names of undefined macros met by the last
	// call of expand.
	undefined []string
}

func newExpander(macros map[string]string) *expander {
	defs := map[string]string{"nil": ""}
	for k, v := range macros {
		defs[k] = v
	}
	return &expander{defs: defs}
}

// expand returns s with its macros expanded. Undefined macros are kept
// literally and their names recorded in e.undefined.
func (e *expander) expand(s string) (string, error) {
	e.undefined = e.undefined[:0]
	var b strings.Builder
	if err := e.expandTo(&b, s, 0); err != nil {
		return "", err
	}
	return b.String(), nil
}

func (e *expander) expandTo(b *strings.Builder, s string, depth int) error {
	if depth > maxExpandDepth {
		return errors.New("macro expansion nested too deeply (recursive definition?)")
	}
	for i := 0; i < len(s); {
		if b.Len() > maxExpandLen {
			return fmt.Errorf("macro expansion longer than %d bytes", maxExpandLen)
		}
		c := s[i]
		if c != '%' || i+1 >= len(s) {
			b.WriteByte(c)
			i++
			continue
		}
		switch n := s[i+1]; {
		case n == '%':
			b.WriteByte('%')
			i += 2
		case n == '{':
			end := matchBrace(s, i+1)
			if end < 0 {
				return fmt.Errorf("unterminated macro %q", truncate(s[i:]))
			}
			if err := e.expandBody(b, s[i+2:end], s[i:end+1], depth); err != nil {
				return err
			}
			i = end + 1
		case n == '(':
			return fmt.Errorf("shell expansion %q is not supported", truncate(s[i:]))
		case n == '[':
			return fmt.Errorf("expression expansion %q is not supported", truncate(s[i:]))
		case n == '?' || n == '!' || isNameStart(n):
			j := i + 1
			for j < len(s) && (s[j] == '?' || s[j] == '!') {
				j++
			}
			k := j
			for k < len(s) && isNameChar(s[k]) {
				k++
			}
			if k == j {
				b.WriteByte('%')
				i++
				continue
			}
			if err := e.expandBody(b, s[i+1:k], s[i:k], depth); err != nil {
				return err
			}
			i = k
		default:
			b.WriteByte('%')
			i++
		}
	}
	return nil
}

// expandBody expands the inside of one macro reference: "name", "?name",
// "!?name:text", "with name". literal is the whole reference, written back
// when the macro is undefined.
func (e *expander) expandBody(b *strings.Builder, body, literal string, depth int) error {
	neg, cond := false, false
	for len(body) > 0 && (body[0] == '!' || body[0] == '?') {
		if body[0] == '!' {
			neg = !neg
		} else {
			cond = true
		}
		body = body[1:]
	}
	name, text, hasText := strings.Cut(body, ":")
	if !cond {
		if f, arg, ok := strings.Cut(body, " "); ok && (f == "with" || f == "without") {
			_, on := e.defs["with_"+strings.TrimSpace(arg)]
			if on == (f == "with") {
				b.WriteString("1")
			} else {
				b.WriteString("0")
			}
			return nil
		}
		if hasText {
			if name == "expand" {
				return e.expandTo(b, text, depth+1)
			}
			return fmt.Errorf("macro %q is not supported", truncate(literal))
		}
	}
	if !validName(name) {
		return fmt.Errorf("invalid macro name in %q", truncate(literal))
	}
	val, defined := e.defs[name]
	switch {
	case !cond && defined:
		return e.expandTo(b, val, depth+1)
	case !cond:
		e.undefined = append(e.undefined, name)
		b.WriteString(literal)
		return nil
	case defined != neg && hasText:
		return e.expandTo(b, text, depth+1)
	case defined != neg && !neg:
		return e.expandTo(b, val, depth+1)
	}
	return nil
}

// matchBrace returns the index of the '}' that closes the '{' at open, or -1.
func matchBrace(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func isNameStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isNameChar(c byte) bool { return isNameStart(c) || (c >= '0' && c <= '9') }

func validName(s string) bool {
	if s == "" || !isNameStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isNameChar(s[i]) {
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
