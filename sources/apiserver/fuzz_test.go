package apiserver

import (
	"bytes"
	"testing"

	"github.com/petrel-os/petrel/sources/datastore"
	"github.com/petrel-os/petrel/sources/settings"
)

// FuzzSettingsJSON feeds arbitrary bodies to the PATCH /settings decoding
// (settings.DecodeJSON, then settings.Flatten): it must never panic, and
// whatever it accepts must be storable and come back as the same settings
// when nested again by GET's nestValues.
func FuzzSettingsJSON(f *testing.F) {
	for _, s := range []string{`{"motd":"hi"}`, `{"a":{"b":[1,"x"]}}`, `{"a.b":{"c":null}}`, `[1]`, `{"a":{}}`, `{"":1}`, `{"x":[{}]}`, `{"n":1.50e3}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		doc, err := settings.DecodeJSON(bytes.NewReader(body))
		if err != nil {
			return
		}
		kvs, err := settings.Flatten([]string{"settings"}, doc)
		if err != nil {
			return
		}
		for _, kv := range kvs {
			if _, err := datastore.ParseKey(datastore.DataKey, kv.Key.Name()); err != nil {
				t.Fatalf("flatten produced unparsable key %q: %v", kv.Key.Name(), err)
			}
			if _, err := datastore.CanonicalValue(kv.Value); err != nil {
				t.Fatalf("flatten produced bad value %q: %v", kv.Value, err)
			}
		}
		out, err := encodeJSON(nestValues(kvs, 1))
		if err != nil {
			t.Fatal(err)
		}
		doc2, err := settings.DecodeJSON(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("nested output %s does not decode: %v", out, err)
		}
		kvs2, err := settings.Flatten([]string{"settings"}, doc2)
		if err != nil || len(kvs2) != len(kvs) {
			t.Fatalf("round trip of %s: %d keys -> %d keys, %v", body, len(kvs), len(kvs2), err)
		}
		for i := range kvs {
			if !kvs[i].Key.Equal(kvs2[i].Key) || string(kvs[i].Value) != string(kvs2[i].Value) {
				t.Fatalf("round trip of %s changed %s=%s to %s=%s", body, kvs[i].Key, kvs[i].Value, kvs2[i].Key, kvs2[i].Value)
			}
		}
	})
}
