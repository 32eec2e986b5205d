package render

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"runtime"
	"sort"
	"strings"
	"text/template"

	"github.com/BurntSushi/toml"
)

// ErrTemplate is matched by errors in a template's front matter or body.
var ErrTemplate = errors.New("bad template")

// Template is a parsed template file: optional TOML front matter
// ("[required-extensions]" ... then a line of "+++"), then a Go
// text/template body.
type Template struct {
	Name string
	// Extensions lists the settings namespaces the template may read, from
	// [required-extensions] (without "std"). Without front matter the
	// template sees all settings.
	Extensions []string
	narrow     bool // front matter present: settings are narrowed
	body       string
}

// ParseTemplate splits front matter from the body and checks both.
func ParseTemplate(name string, data []byte) (*Template, error) {
	t := &Template{Name: name, body: string(data)}
	if fm, body, ok := splitFrontMatter(string(data)); ok {
		var f map[string]any
		if _, err := toml.Decode(fm, &f); err != nil {
			return nil, fmt.Errorf("parse front matter of template %s: %w: %w", name, ErrTemplate, err)
		}
		var exts map[string]any
		for k, v := range f {
			m, ok := v.(map[string]any)
			if k != "required-extensions" || !ok {
				return nil, fmt.Errorf("parse front matter of template %s: %w: unknown key %q (expected a [required-extensions] table)", name, ErrTemplate, k)
			}
			exts = m
			t.narrow = true
		}
		for ext := range exts {
			if ext == "std" {
				continue // helpers are always available
			}
			t.Extensions = append(t.Extensions, ext)
		}
		sort.Strings(t.Extensions)
		t.body = body
	}
	if _, err := t.parse(nil); err != nil {
		return nil, err
	}
	return t, nil
}

// splitFrontMatter finds a line made only of three or more '+'.
func splitFrontMatter(s string) (front, body string, ok bool) {
	off := 0
	for off <= len(s) {
		end := strings.IndexByte(s[off:], '\n')
		line := s[off:]
		next := len(s)
		if end >= 0 {
			line = s[off : off+end]
			next = off + end + 1
		}
		line = strings.TrimSuffix(line, "\r")
		if len(line) >= 3 && strings.Trim(line, "+") == "" {
			return s[:off], s[next:], true
		}
		if end < 0 {
			break
		}
		off = next
	}
	return "", s, false
}

func (t *Template) parse(data map[string]any) (*template.Template, error) {
	tt, err := template.New(t.Name).Option("missingkey=error").Funcs(funcs(data)).Parse(t.body)
	if err != nil {
		return nil, fmt.Errorf("parse template %s: %w: %w", t.Name, ErrTemplate, err)
	}
	return tt, nil
}

// Execute renders the template with data {"settings": ..., "os": ...};
// settings are narrowed to the required extensions.
func (t *Template) Execute(data map[string]any) ([]byte, error) {
	view := map[string]any{}
	for k, v := range data {
		view[k] = v
	}
	if t.narrow {
		all, _ := data["settings"].(map[string]any)
		narrowed := map[string]any{}
		for _, ext := range t.Extensions {
			if v, ok := all[ext]; ok {
				narrowed[ext] = v
			}
		}
		view["settings"] = narrowed
	}
	tt, err := t.parse(view)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := tt.Execute(&b, view); err != nil {
		return nil, fmt.Errorf("render template %s: %w", t.Name, err)
	}
	return b.Bytes(), nil
}

// funcs returns the helpers; "setting" reads from data.
func funcs(data map[string]any) template.FuncMap {
	return template.FuncMap{
		"setting":       func(path string) any { return lookup(data, "settings."+path) },
		"default":       defaultValue,
		"join_array":    joinArray,
		"join_map":      joinMap,
		"base64_decode": base64Decode,
		"toml_encode":   tomlEncode,
		"json_encode":   jsonEncode,
		"quote":         quote,
		"toml_key":      tomlKey,
		"single_line":   singleLine,
		"ini_value":     iniValue,
		"is_ipv4":       func(s string) bool { ip := net.ParseIP(s); return ip != nil && ip.To4() != nil },
		"is_ipv6":       func(s string) bool { ip := net.ParseIP(s); return ip != nil && ip.To4() == nil },
		"is_null":       func(v any) bool { return v == nil },
		"goarch":        func() string { return runtime.GOARCH },
		// Kubernetes (kubernetes.go).
		"list_of":             listOf,
		"node_taints":         nodeTaints,
		"kube_reserve_memory": kubeReserveMemory,
		"kube_reserve_cpu":    kubeReserveCPU,
		"registry_mirrors":    registryMirrors,
	}
}

// lookup walks a dotted path through nested maps; nil when absent.
func lookup(data map[string]any, path string) any {
	var cur any = data
	for _, seg := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[seg]; !ok {
			return nil
		}
	}
	return cur
}

// defaultValue returns v unless it is nil or "", else def.
func defaultValue(def, v any) any {
	if v == nil {
		return def
	}
	if s, ok := v.(string); ok && s == "" {
		return def
	}
	return v
}

func joinArray(sep string, v any) (string, error) {
	if v == nil {
		return "", nil
	}
	items, ok := v.([]any)
	if !ok {
		return "", fmt.Errorf("join_array: expected a list, got %T", v)
	}
	parts := make([]string, len(items))
	for i, e := range items {
		parts[i] = fmt.Sprint(e)
	}
	return strings.Join(parts, sep), nil
}

// joinMap renders a table as key<kvSep>value pairs joined by pairSep,
// sorted by key.
func joinMap(kvSep, pairSep string, v any) (string, error) {
	if v == nil {
		return "", nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return "", fmt.Errorf("join_map: expected a table, got %T", v)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + kvSep + fmt.Sprint(m[k])
	}
	return strings.Join(parts, pairSep), nil
}

func base64Decode(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return "", fmt.Errorf("base64_decode: %w", err)
	}
	return string(b), nil
}

// tomlEncode renders a value as a TOML value: a quoted string, a number,
// a boolean, an array or an inline table.
func tomlEncode(v any) (string, error) {
	if _, ok := v.(map[string]any); ok {
		return "", errors.New("toml_encode: tables are not supported; encode their values")
	}
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(map[string]any{"v": integral(v)}); err != nil {
		return "", fmt.Errorf("toml_encode: %w", err)
	}
	out := strings.TrimSpace(b.String())
	return strings.TrimPrefix(out, "v = "), nil
}

func jsonEncode(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("json_encode: %w", err)
	}
	return string(b), nil
}

// integral turns whole float64s (JSON numbers) into int64, so 1234 is
// encoded as 1234, not 1234.0.
func integral(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = integral(e)
		}
		return out
	}
	return v
}
