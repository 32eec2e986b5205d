package builder

import (
	"slices"
	"testing"
)

func TestStateRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   state
	}{
		{"one rpm", state{Key: "abc", RPMs: []string{"petrel-os-0.1.0-1.x86_64.rpm"}}},
		{"subpackages", state{Key: "def", RPMs: []string{"a.rpm", "b.rpm"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseState("key", tt.in.marshal())
			if err != nil || got.Key != tt.in.Key || !slices.Equal(got.RPMs, tt.in.RPMs) {
				t.Errorf("parseState(marshal(%v)) = %v, %v", tt.in, got, err)
			}
		})
	}
	for _, bad := range []string{"", "rpm a.rpm\n", "key k\nrpm ../x.rpm\n"} {
		if _, err := parseState("key", []byte(bad)); err == nil {
			t.Errorf("parseState(%q) succeeded, want an error", bad)
		}
	}
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte("key abc\nrpm a.rpm\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseState("key", data)
		if err != nil {
			return
		}
		again, err := parseState("key", s.marshal())
		if err != nil || again.Key != s.Key || !slices.Equal(again.RPMs, s.RPMs) {
			t.Errorf("round trip of %q: %v, %v", data, again, err)
		}
	})
}
