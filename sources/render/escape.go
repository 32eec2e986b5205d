package render

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The escaping helpers of templates: each makes a setting's value safe to
// embed in one output format, or fails the render when it cannot be. The
// settings model already refuses control characters in every string
// (docs/settings.md); these helpers do not rely on it.

// quote renders s as a double-quoted string: '"' and '\' are escaped with a
// backslash, line breaks, tabs and the other control characters as \n, \t,
// \uXXXX. The result is a TOML basic string, a JSON string and a C-style
// quoted string that systemd unescapes (Environment=, ExecStart=).
func quote(v any) (string, error) {
	s, err := text("quote", v)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if e := shortEscape(r); e != "" {
			b.WriteString(e)
		} else if isControl(r) {
			fmt.Fprintf(&b, `\u%04X`, r)
		} else {
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

// shortEscape returns the two-character escape of r that quote uses, or
// "" when r has none.
func shortEscape(r rune) string {
	switch r {
	case '"', '\\':
		return `\` + string(r)
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\t':
		return `\t`
	}
	return ""
}

// tomlKey renders s as a TOML key: bare when it is only ASCII letters,
// digits, '-' and '_', else quoted ("net.ipv4.ip_forward" stays one key).
func tomlKey(v any) (string, error) {
	s, err := text("toml_key", v)
	if err != nil {
		return "", err
	}
	if s != "" && strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == "" {
		return s, nil
	}
	return quote(s)
}

// singleLine returns v as it is when it is one line of text without
// control characters, for line-oriented files (/etc/hostname, /etc/motd),
// where a line break would add a line; else the render fails.
func singleLine(v any) (string, error) {
	s, err := text("single_line", v)
	if err != nil {
		return "", err
	}
	if i := strings.IndexFunc(s, isControl); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return "", fmt.Errorf("single_line: control character U+%04X at byte %d", r, i)
	}
	return s, nil
}

// iniValue returns v as it is for the value of an INI "key=value" line
// (systemd units and drop-ins, networkd files): one line without control
// characters, and without leading or trailing blanks, which INI readers
// drop. INI has no escape for these, so the render fails instead.
func iniValue(v any) (string, error) {
	s, err := singleLine(v)
	if err != nil {
		return "", fmt.Errorf("ini_value: %w", err)
	}
	if strings.TrimSpace(s) != s {
		return "", fmt.Errorf("ini_value: %q has leading or trailing blanks, which INI readers drop", s)
	}
	return s, nil
}

// text converts a string or a scalar to the text a helper escapes;
// tables, lists and nil are refused, as is invalid UTF-8.
func text(helper string, v any) (string, error) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case bool, float64, int, int64:
		s = fmt.Sprint(integral(x))
	case nil:
		return "", fmt.Errorf("%s: value is not set", helper)
	default:
		return "", fmt.Errorf("%s: expected a string, number or boolean, got %T", helper, v)
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%s: %q is not valid UTF-8", helper, s)
	}
	return s, nil
}

// isControl reports C0, DEL and C1 control characters.
func isControl(r rune) bool { return r < 0x20 || r >= 0x7f && r <= 0x9f }
