package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/petrel-os/petrel/sources/waves"
)

// Parse reads manifest.json strictly and reports every problem at once,
// each naming its field; errors match ErrInvalid.
func Parse(data []byte) (*Manifest, error) {
	p := &parser{}
	m := p.manifest(data)
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return m, nil
}

type parser struct{ errs []error }

func (p *parser) addf(path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	p.errs = append(p.errs, fmt.Errorf("%w: %s", ErrInvalid, msg))
}

// member is one key and value of a JSON object, in document order.
type member struct {
	key   string
	value json.RawMessage
}

// object splits a JSON object into its members and refuses a key given
// twice (encoding/json would keep the last one silently).
func object(data []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("expected an object, got %s", kind(data))
	}
	var ms []member
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("%q: %w", key, err)
		}
		if seen[key] {
			return nil, fmt.Errorf("%q: key given twice", key)
		}
		seen[key] = true
		ms = append(ms, member{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("data after the object")
	}
	return ms, nil
}

// kind names the JSON type of data for an error message.
func kind(data []byte) string {
	d := bytes.TrimSpace(data)
	if len(d) == 0 {
		return "nothing"
	}
	switch d[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// fields checks an object's members against the required keys and returns
// them by key; unknown keys are ignored.
func (p *parser) fields(path string, data []byte, required ...string) (map[string]json.RawMessage, bool) {
	ms, err := object(data)
	if err != nil {
		p.addf(path, "%v", err)
		return nil, false
	}
	f := map[string]json.RawMessage{}
	for _, m := range ms {
		f[m.key] = m.value
	}
	ok := true
	for _, k := range required {
		if _, has := f[k]; !has {
			p.addf(join(path, k), "missing")
			ok = false
		}
	}
	return f, ok
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (p *parser) manifest(data []byte) *Manifest {
	f, ok := p.fields("", data, "updates", "migrations")
	if !ok {
		return nil
	}
	m := &Manifest{Migrations: p.migrations(f["migrations"])}
	var raw []json.RawMessage
	if err := json.Unmarshal(f["updates"], &raw); err != nil {
		p.addf("updates", "expected an array, got %s", kind(f["updates"]))
		return nil
	}
	type key struct{ variant, arch, version string }
	seen := map[key]int{}
	for i, r := range raw {
		path := fmt.Sprintf("updates[%d]", i)
		u, ok := p.update(path, r)
		if !ok {
			continue
		}
		k := key{u.Variant, u.Arch, u.Version.String()}
		if j, dup := seen[k]; dup {
			p.addf(path, "%s %s %s is also updates[%d]", u.Variant, u.Arch, u.Version, j)
			continue
		}
		seen[k] = i
		m.Updates = append(m.Updates, u)
	}
	return m
}

func (p *parser) update(path string, data []byte) (Update, bool) {
	f, ok := p.fields(path, data, "variant", "arch", "version", "max_version", "waves", "images")
	if !ok {
		return Update{}, false
	}
	n := len(p.errs)
	u := Update{
		Variant:    p.name(join(path, "variant"), f["variant"]),
		Arch:       p.name(join(path, "arch"), f["arch"]),
		Version:    p.version(join(path, "version"), f["version"]),
		MaxVersion: p.version(join(path, "max_version"), f["max_version"]),
	}
	s, err := waves.ParseSchedule(f["waves"])
	if err != nil {
		p.addf(join(path, "waves"), "%s", strings.ReplaceAll(err.Error(), waves.ErrInvalid.Error()+": ", ""))
	}
	u.Waves = s
	if img, ok := p.fields(join(path, "images"), f["images"], "boot", "root", "hash"); ok {
		u.Images = Images{
			Boot: p.name(join(path, "images.boot"), img["boot"]),
			Root: p.name(join(path, "images.root"), img["root"]),
			Hash: p.name(join(path, "images.hash"), img["hash"]),
		}
		if rh, ok := img["root_hash"]; ok {
			u.Images.RootHash = p.rootHash(join(path, "images.root_hash"), rh)
		}
	}
	return u, len(p.errs) == n
}

// name reads a non-empty string usable as a target or file name: no
// slash, no control character, not "." or "..".
func (p *parser) name(path string, data []byte) string {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		p.addf(path, "expected a string, got %s", kind(data))
		return ""
	}
	if !plainName(s) {
		p.addf(path, "%q: expected a non-empty name without \"/\" or control characters", s)
		return ""
	}
	return s
}

// plainName reports whether s can name a target in a flat directory.
func plainName(s string) bool {
	if s == "" || s == "." || s == ".." || len(s) > 255 {
		return false
	}
	for _, c := range s {
		if c == '/' || c == '\\' || c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// rootHash reads a dm-verity root hash: 64 lower-case hex digits.
func (p *parser) rootHash(path string, data []byte) string {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		p.addf(path, "expected a string, got %s", kind(data))
		return ""
	}
	if len(s) != 64 || strings.Trim(s, "0123456789abcdef") != "" {
		p.addf(path, "%q: expected 64 lower-case hex digits (a sha256 dm-verity root hash)", s)
		return ""
	}
	return s
}

func (p *parser) version(path string, data []byte) Version {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		p.addf(path, "expected a string, got %s", kind(data))
		return Version{}
	}
	var v Version
	if err := v.UnmarshalText([]byte(s)); err != nil {
		p.addf(path, "%v", err)
	}
	return v
}

func (p *parser) migrations(data []byte) Migrations {
	ms, err := object(data)
	if err != nil {
		p.addf("migrations", "%v", err)
		return nil
	}
	out := Migrations{}
	for _, m := range ms {
		path := fmt.Sprintf("migrations[%q]", m.key)
		span, err := ParseSpan(m.key)
		if err != nil {
			p.addf(path, "%v", err)
			continue
		}
		if _, dup := out[span]; dup {
			p.addf(path, "the same versions as another key")
			continue
		}
		var names []string
		if err := json.Unmarshal(m.value, &names); err != nil || names == nil {
			p.addf(path, "expected an array of names, got %s", kind(m.value))
			continue
		}
		for i, n := range names {
			if !plainName(n) {
				p.addf(fmt.Sprintf("%s[%d]", path, i), "%q: expected a non-empty name without \"/\" or control characters", n)
			}
		}
		out[span] = names
	}
	return out
}
