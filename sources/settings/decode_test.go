package settings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/datastore"
)

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	got, err := DecodeJSON(strings.NewReader(` {"motd":"hi","n":1.50,"l":[1,"x",null,true],"o":{"a":{}},"z":null} `))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"motd": "hi", "n": json.Number("1.50"), "l": []any{json.Number("1"), "x", nil, true},
		"o": map[string]any{"a": map[string]any{}}, "z": nil}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("DecodeJSON = %#v, want %#v", got, want)
	}
}

// nest returns a document with depth levels of open/close around "1" in
// the member "a" (depth counts the document itself).
func nest(open, close string, depth int) string {
	return `{"a":` + strings.Repeat(open, depth-1) + `1` + strings.Repeat(close, depth-1) + `}`
}

func manyKeys(n int) string {
	var b strings.Builder
	b.WriteString(`{"sysctl":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":"1"`, i)
	}
	b.WriteString(`}}`)
	return b.String()
}

func TestDecodeJSONRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, doc string
		limit     string // LimitDepth, ... or "" for a syntax error
		want      string
	}{
		{"list", `[1]`, "", "invalid JSON: expected a JSON object, got a list"},
		{"string", `"x"`, "", "expected a JSON object, got string"},
		{"null", `null`, "", "expected a JSON object, got null"},
		{"empty", ``, "", "invalid JSON: unexpected EOF"},
		{"truncated", `{"a":{"b":1}`, "", "invalid JSON: unexpected EOF"},
		{"trailing", `{"a":1} {}`, "", "trailing data after the object at byte 7"},
		{"bad token", `{"a":tru}`, "", "invalid JSON: invalid character '}'"},
		{"objects too deep", nest(`{"a":`, `}`, MaxDepth+1), LimitDepth, "nesting depth over the limit of 32 at byte"},
		{"lists too deep", nest(`[`, `]`, MaxDepth+1), LimitDepth, "nesting depth over the limit of 32"},
		{"too many keys", manyKeys(MaxKeys + 1), LimitKeys, "number of settings over the limit of 10000"},
		{"long name", `{"` + strings.Repeat("n", MaxNameLength+1) + `":1}`, LimitName, "name length over the limit of 255 at byte 259"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := DecodeJSON(strings.NewReader(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("DecodeJSON = %v, want an error containing %q", err, tc.want)
			}
			var le *LimitError
			switch {
			case tc.limit == "" && !errors.Is(err, ErrSyntax):
				t.Errorf("error %v does not match ErrSyntax", err)
			case tc.limit != "" && (!errors.As(err, &le) || le.What != tc.limit || !errors.Is(err, ErrLimit)):
				t.Errorf("error %v is not a *LimitError about %s", err, tc.limit)
			}
		})
	}
	for _, doc := range []string{nest(`{"a":`, `}`, MaxDepth), nest(`[`, `]`, MaxDepth), manyKeys(MaxKeys),
		`{"` + strings.Repeat("n", MaxNameLength) + `":1}`} {
		if _, err := DecodeJSON(strings.NewReader(doc)); err != nil {
			t.Errorf("document at the limit refused: %v", err)
		}
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestDecodeJSONStopsAtLimit checks that decoding stops reading where a
// limit is crossed: what follows (here 64 MiB) is never read.
func TestDecodeJSONStopsAtLimit(t *testing.T) {
	t.Parallel()
	const rest = 64 << 20
	for name, head := range map[string]string{
		"depth": `{"a":` + strings.Repeat(`{"a":`, MaxDepth),
		"keys":  strings.TrimSuffix(manyKeys(MaxKeys+1), `}}`) + ",",
		"name":  `{"` + strings.Repeat("n", MaxNameLength+1) + `":`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := &countingReader{r: io.MultiReader(strings.NewReader(head), io.LimitReader(repeatReader('['), rest))}
			_, err := DecodeJSON(r)
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("DecodeJSON = %v, want a limit error", err)
			}
			if r.n > int64(len(head))+64<<10 {
				t.Errorf("read %d bytes of a %d-byte head and %d more; want it to stop near the head", r.n, len(head), rest)
			}
		})
	}
}

type repeatReader byte

func (b repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// TestFlattenKeepsCauses checks that Flatten's errors match the
// datastore's sentinel errors, so callers can branch on them.
func TestFlattenKeepsCauses(t *testing.T) {
	t.Parallel()
	_, err := Flatten([]string{"settings"}, map[string]any{"bad key!": "x", "ok": map[string]any{"l": time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}})
	if !errors.Is(err, datastore.ErrInvalidKey) || !errors.Is(err, datastore.ErrInvalidValue) {
		t.Fatalf("Flatten = %v, want it to match datastore.ErrInvalidKey and ErrInvalidValue", err)
	}
	for _, want := range []string{`invalid key "settings.bad key!"`, "settings.ok.l: invalid value"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Flatten error %q does not name %q", err, want)
		}
	}
}

// FuzzDecodeJSON checks DecodeJSON against encoding/json: it never panics;
// a document it accepts decodes to the same value with encoding/json and
// stays within the limits; a document encoding/json accepts is refused
// only for a limit.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"motd":"hi"}`, `{"a":{"b":[1,"x",null]}}`, `{"a":1,"a":{"b":2}}`, `[1]`, `{"a":{}} x`,
		`{"n":-1.5e3}`, `{"s":"\u00e9\n"}`, nest(`[`, `]`, MaxDepth+1), `{"a":[[]]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := DecodeJSON(bytes.NewReader(body))
		var want map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		stdErr := dec.Decode(&want)
		if stdErr == nil {
			if _, err := dec.Token(); !errors.Is(err, io.EOF) {
				stdErr = errors.New("trailing data")
			}
		}
		if stdErr == nil && want == nil {
			stdErr = errors.New("null")
		}
		switch {
		case err == nil && stdErr != nil:
			t.Fatalf("DecodeJSON accepted %q, which encoding/json refuses: %v", body, stdErr)
		case err == nil && !reflect.DeepEqual(got, want):
			t.Fatalf("DecodeJSON(%q) = %#v, encoding/json gives %#v", body, got, want)
		case err != nil && stdErr == nil && !errors.Is(err, ErrLimit):
			t.Fatalf("DecodeJSON refused %q, which encoding/json accepts, for no limit: %v", body, err)
		case err != nil && !errors.Is(err, ErrLimit) && !errors.Is(err, ErrSyntax):
			t.Fatalf("DecodeJSON error %v matches neither ErrLimit nor ErrSyntax", err)
		}
	})
}
