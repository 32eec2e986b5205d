package datastore

import (
	"errors"
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		typ      KeyType
		segments []string
		canon    string
		reason   string
	}{
		{name: "a", segments: []string{"a"}, canon: "a"},
		{name: "settings.motd", segments: []string{"settings", "motd"}, canon: "settings.motd"},
		{name: `a."b.c".d`, segments: []string{"a", "b.c", "d"}, canon: `a."b.c".d`},
		{name: `a."b".c`, segments: []string{"a", "b", "c"}, canon: "a.b.c"},
		{name: "a/b_c-D9", segments: []string{"a/b_c-D9"}, canon: "a/b_c-D9"},
		{name: "", reason: "cannot be empty"},
		{name: "a..b", reason: "empty key segment"},
		{name: ".a", reason: "empty key segment"},
		{name: "a.", reason: "ends with separator"},
		{name: `a.""`, reason: "empty key segment"},
		{name: `a."b`, reason: "unbalanced quotes"},
		{name: "a b", reason: `invalid character in key: ' '`},
		{name: "a.b=c", reason: `invalid character in key: '='`},
		{name: "a%2E", reason: `invalid character in key: '%'`},
		{name: strings.Repeat("a", 256), reason: "longer than 255 bytes"},
		{name: strings.Repeat("/", 201), reason: "segment longer than 200 bytes once percent-encoded"},
		{name: "a.b", typ: MetaKey, reason: "metadata keys must have exactly one segment"},
		{name: "affected-services", typ: MetaKey, segments: []string{"affected-services"}, canon: "affected-services"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := ParseKey(tt.typ, tt.name)
			if tt.reason != "" {
				var ke *KeyError
				if !errors.As(err, &ke) || ke.Reason != tt.reason || !errors.Is(err, ErrInvalidKey) {
					t.Fatalf("ParseKey(%q) = %v, want reason %q", tt.name, err, tt.reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKey(%q) = %v", tt.name, err)
			}
			if got := strings.Join(k.Segments(), "|"); got != strings.Join(tt.segments, "|") {
				t.Errorf("ParseKey(%q) segments = %q, want %q", tt.name, got, tt.segments)
			}
			if k.Name() != tt.canon {
				t.Errorf("ParseKey(%q).Name() = %q, want %q", tt.name, k.Name(), tt.canon)
			}
		})
	}
}

func TestKeyPaths(t *testing.T) {
	t.Parallel()
	abc := MustKey(DataKey, "a.b.c")
	meta := MustKey(MetaKey, "my-metadata")
	for _, tt := range []struct{ got, want string }{
		{dataPath("/base/live", abc), "/base/live/a/b/c"},
		{dataPath("/base/pending/"+encodeSegment("test transaction"), abc), "/base/pending/test%20transaction/a/b/c"},
		{metaPath("/base/live", meta, abc), "/base/live/a/b/c.my-metadata"},
		{dataPath("/l", MustKey(DataKey, `a."b.c"/d`)), "/l/a/b%2Ec%2Fd"},
	} {
		if tt.got != tt.want {
			t.Errorf("path = %q, want %q", tt.got, tt.want)
		}
	}
}

func TestSegmentEncodingRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"a", "b.c", "x/y%z", "ümlaut", " "} {
		got, err := decodeSegment(encodeSegment(s))
		if err != nil || got != s {
			t.Errorf("decode(encode(%q)) = %q, %v", s, got, err)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	for _, s := range []string{"a", "settings.motd", `a."b.c".d`, `a."`, "a..b", "", "a.", `"."`, "x/y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		k, err := ParseKey(DataKey, name)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("ParseKey(%q) error %v is not ErrInvalidKey", name, err)
			}
			return
		}
		again, err := ParseKey(DataKey, k.Name())
		if err != nil {
			t.Fatalf("ParseKey(canonical %q of %q) = %v", k.Name(), name, err)
		}
		if !again.Equal(k) {
			t.Fatalf("round trip of %q: %q != %q", name, again.Segments(), k.Segments())
		}
		for _, s := range k.Segments() {
			enc := encodeSegment(s)
			if strings.ContainsAny(enc, "./") {
				t.Fatalf("encoded segment %q holds a separator", enc)
			}
			if dec, err := decodeSegment(enc); err != nil || dec != s {
				t.Fatalf("decode(encode(%q)) = %q, %v", s, dec, err)
			}
		}
	})
}
