package settings

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/petrel-os/petrel/sources/datastore"
)

// Limits of one settings document decoded by DecodeJSON. They are checked
// while the document is read, so a hostile body costs at most the work up
// to the first limit it crosses.
const (
	// MaxDepth bounds the nesting of objects and lists, the document
	// itself being depth 1. The model's deepest value,
	// settings.kubernetes.node-taints.<key>, is a list at depth 4.
	MaxDepth = 32
	// MaxKeys bounds the values (object members that are not objects
	// themselves: the keys a document writes) in one document: as many as
	// the datastore takes in one write.
	MaxKeys = datastore.MaxKeysPerWrite
	// MaxNameLength bounds one object member name: no longer name can be
	// part of a datastore key.
	MaxNameLength = datastore.MaxKeyNameLength
)

// ErrLimit is matched by every *LimitError.
var ErrLimit = errors.New("settings document over a limit")

// What a LimitError is about.
const (
	LimitDepth = "nesting depth"
	LimitKeys  = "number of settings"
	LimitName  = "name length"
)

// LimitError says which limit a document crossed and where.
type LimitError struct {
	What   string // LimitDepth, LimitKeys or LimitName
	Max    int
	Offset int64 // byte offset in the document where decoding stopped
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s over the limit of %d at byte %d", e.What, e.Max, e.Offset)
}

// Is makes a *LimitError match ErrLimit.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// ErrSyntax is matched by errors for documents that are not one JSON
// object.
var ErrSyntax = errors.New("invalid JSON")

// DecodeJSON reads exactly one JSON object from r, as a settings document
// for Validate and Flatten: objects are map[string]any, lists []any,
// numbers json.Number (so they keep their spelling), strings, booleans and
// nil. It streams tokens and stops at the first limit crossed (MaxDepth,
// MaxKeys, MaxNameLength; a *LimitError), so neither time nor memory grows
// with how far a document goes past a limit. Of two members with the same
// name, the later wins, as with encoding/json.
func DecodeJSON(r io.Reader) (map[string]any, error) {
	d := &jsonDecoder{dec: json.NewDecoder(r)}
	d.dec.UseNumber()
	tok, err := d.dec.Token()
	if err != nil {
		return nil, d.syntax(err)
	}
	if tok != json.Delim('{') {
		return nil, fmt.Errorf("%w: expected a JSON object, got %s", ErrSyntax, describeToken(tok))
	}
	m, err := d.object(1)
	if err != nil {
		return nil, err
	}
	end := d.dec.InputOffset()
	if _, err := d.dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: trailing data after the object at byte %d", ErrSyntax, end)
	}
	return m, nil
}

type jsonDecoder struct {
	dec  *json.Decoder
	keys int
}

func (d *jsonDecoder) syntax(err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: %w", ErrSyntax, err)
}

func (d *jsonDecoder) limit(what string, max int) error {
	return &LimitError{What: what, Max: max, Offset: d.dec.InputOffset()}
}

// object reads the members of an object whose '{' was read, and its '}'.
func (d *jsonDecoder) object(depth int) (map[string]any, error) {
	m := map[string]any{}
	for d.dec.More() {
		tok, err := d.dec.Token()
		if err != nil {
			return nil, d.syntax(err)
		}
		name, ok := tok.(string)
		if !ok { // the decoder allows only strings here; kept for safety
			return nil, fmt.Errorf("%w: expected a member name, got %s", ErrSyntax, describeToken(tok))
		}
		if len(name) > MaxNameLength {
			return nil, d.limit(LimitName, MaxNameLength)
		}
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		if _, isObject := v.(map[string]any); !isObject {
			if d.keys++; d.keys > MaxKeys {
				return nil, d.limit(LimitKeys, MaxKeys)
			}
		}
		m[name] = v
	}
	if _, err := d.dec.Token(); err != nil {
		return nil, d.syntax(err)
	}
	return m, nil
}

// value reads one value inside a container at depth.
func (d *jsonDecoder) value(depth int) (any, error) {
	tok, err := d.dec.Token()
	if err != nil {
		return nil, d.syntax(err)
	}
	switch tok {
	case json.Delim('{'), json.Delim('['):
		if depth >= MaxDepth {
			return nil, d.limit(LimitDepth, MaxDepth)
		}
		if tok == json.Delim('{') {
			return d.object(depth + 1)
		}
		return d.list(depth + 1)
	}
	return tok, nil // string, json.Number, bool or nil
}

// list reads the elements of a list whose '[' was read, and its ']'.
func (d *jsonDecoder) list(depth int) ([]any, error) {
	l := []any{}
	for d.dec.More() {
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		l = append(l, v)
	}
	if _, err := d.dec.Token(); err != nil {
		return nil, d.syntax(err)
	}
	return l, nil
}

func describeToken(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "a list"
		}
		return fmt.Sprintf("%q", string(t))
	case nil:
		return "null"
	default:
		return typeName(t)
	}
}
