package datastore

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"unicode/utf8"
)

// ErrInvalidValue is matched by errors from CanonicalValue.
var ErrInvalidValue = errors.New("invalid value")

// CanonicalValue checks that raw is a value the datastore can hold (a JSON
// scalar, or a list stored whole, whose elements may be lists and objects,
// as upstream stores settings.network.hosts and the list form of
// settings.container-registry) and returns it in the form
// written to disk: compact, strings escaped as serde_json escapes them, no
// trailing newline. null is rejected: an unset value is an absent file.
func CanonicalValue(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidValue, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing data after JSON value", ErrInvalidValue)
	}
	var b bytes.Buffer
	switch x := v.(type) {
	case nil:
		return nil, fmt.Errorf("%w: null is not stored (an unset value is an absent key)", ErrInvalidValue)
	case map[string]any:
		return nil, fmt.Errorf("%w: objects are stored as nested keys, not as one value", ErrInvalidValue)
	case []any:
		writeNested(&b, x)
	default:
		writeScalar(&b, x)
	}
	return b.Bytes(), nil
}

// EncodeValue marshals a Go value and canonicalises it.
func EncodeValue(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidValue, err)
	}
	return CanonicalValue(raw)
}

// writeNested writes a list or an object inside a stored list: compact,
// object keys sorted.
func writeNested(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeNested(b, e)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			writeNested(b, x[k])
		}
		b.WriteByte('}')
	default:
		writeScalar(b, x)
	}
}

func writeScalar(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case json.Number:
		b.WriteString(string(x))
	case string:
		writeString(b, x)
	}
}

// writeString escapes like serde_json: only quote, backslash and control
// characters, with lower-case \u00xx for controls lacking a short form.
func writeString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				b.WriteString(`\u00`)
				b.WriteByte(hex[r>>4])
				b.WriteByte(hex[r&15])
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
}
