package datastore

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestCanonicalValue(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{`"Welcome to Bottlerocket!"`, `"Welcome to Bottlerocket!"`},
		{` 42 `, `42`},
		{`true`, `true`},
		{`1.50`, `1.50`},
		{`["motd", "x"]`, `["motd","x"]`},
		{`"a<b>&c/"`, `"a<b>&c/"`},
		{`"tab\there\u0001"`, `"tab\there\u0001"`},
		{`"\u00e9"`, `"é"`},
		{`null`, ""},
		{`{"a":1}`, ""},
		{`[[1], ["10.0.0.1", ["a", "b"]]]`, `[[1],["10.0.0.1",["a","b"]]]`},
		{`[{"registry": "r", "endpoint": ["https://m"], "a": null}]`, `[{"a":null,"endpoint":["https://m"],"registry":"r"}]`},
		{`"unterminated`, ""},
		{`1 2`, ""},
		{``, ""},
	} {
		got, err := CanonicalValue([]byte(tt.in))
		if tt.want == "" {
			if !errors.Is(err, ErrInvalidValue) {
				t.Errorf("CanonicalValue(%q) = %q, %v, want ErrInvalidValue", tt.in, got, err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("CanonicalValue(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzCanonicalValue(f *testing.F) {
	for _, s := range []string{`"x"`, `1`, `[1,"a",true]`, `null`, `{"a":1}`, `"\u0000\ud800"`, `1e400`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := CanonicalValue(in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("CanonicalValue(%q) = %q, not valid JSON", in, out)
		}
		again, err := CanonicalValue(out)
		if err != nil || string(again) != string(out) {
			t.Fatalf("CanonicalValue not idempotent: %q -> %q -> %q, %v", in, out, again, err)
		}
	})
}
