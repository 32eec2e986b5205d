package ready

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrOSRelease reports a malformed os-release file.
var ErrOSRelease = errors.New("invalid os-release")

// ParseOSRelease reads os-release(5): KEY=value lines, blank lines and
// comments. Values may be double- or single-quoted; inside double quotes
// the backslash escapes \" \\ \$ \` are undone. Every bad line is reported.
func ParseOSRelease(r io.Reader) (map[string]string, error) {
	vars := map[string]string{}
	var errs []error
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || !validKey(k) {
			errs = append(errs, fmt.Errorf("%w: line %d: want KEY=value with KEY of A-Z, 0-9 and _, got %q", ErrOSRelease, n, line))
			continue
		}
		val, err := unquote(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: line %d: value of %s: %w", ErrOSRelease, n, k, err))
			continue
		}
		vars[k] = val
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("read os-release: %w", err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return vars, nil
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// unquote undoes os-release quoting of one value.
func unquote(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	switch q := v[0]; q {
	case '\'':
		if len(v) < 2 || v[len(v)-1] != '\'' || strings.ContainsRune(v[1:len(v)-1], '\'') {
			return "", fmt.Errorf("unterminated single quote in %q", v)
		}
		return v[1 : len(v)-1], nil
	case '"':
		var b strings.Builder
		for i := 1; i < len(v); i++ {
			c := v[i]
			switch {
			case c == '\\' && i+1 < len(v) && strings.IndexByte("\"\\$`", v[i+1]) >= 0:
				b.WriteByte(v[i+1])
				i++
			case c == '"':
				if i != len(v)-1 {
					return "", fmt.Errorf("text after closing quote in %q", v)
				}
				return b.String(), nil
			default:
				b.WriteByte(c)
			}
		}
		return "", fmt.Errorf("unterminated double quote in %q", v)
	}
	if strings.ContainsAny(v, "\"'\\$` \t") {
		return "", fmt.Errorf("unquoted value %q holds a quote, backslash, $, ` or blank", v)
	}
	return v, nil
}
