package userdata

import (
	"bytes"
	"compress/gzip"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func gz(t testing.TB, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func TestParse(t *testing.T) {
	const tomlDoc = "[settings]\nmotd = \"hi\"\n[settings.network]\nhostname = \"petrel-test\"\n"
	want := map[string]any{"motd": "hi", "network": map[string]any{"hostname": "petrel-test"}}
	for name, data := range map[string][]byte{
		"toml":      []byte(tomlDoc),
		"gzip toml": gz(t, tomlDoc),
		"json":      []byte(`  {"settings":{"motd":"hi","network":{"hostname":"petrel-test"}}}`),
		"gzip json": gz(t, `{"settings":{"motd":"hi","network":{"hostname":"petrel-test"}}}`),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Parse("test", data)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %#v", got)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		want []string
	}{
		{"malformed TOML", "[settings]\nmotd = \"a\"\nthis is not toml\n", []string{"user data from file /x: TOML line 3"}},
		{"malformed JSON", "{\"settings\": {\n\"motd\": \"a\",\n}}", []string{"user data from file /x: JSON line 3"}},
		{"JSON trailing", `{"settings":{}} {}`, []string{"trailing data"}},
		{"no settings", "[other]\na = 1\n", []string{"user data from file /x: did not contain a [settings] table"}},
		{"settings not a table", "settings = 3\n", []string{"did not contain a [settings] table"}},
		{"unknown setting", "[settings]\nmotdd = \"x\"\n", []string{"settings.motdd: unknown setting"}},
		{"wrong type", "[settings.network]\nhostname = 42\n", []string{"settings.network.hostname: expected a string, got number"}},
		{"bad hostname", "[settings.network]\nhostname = \"bad_name!\"\n", []string{`settings.network.hostname: expected an RFC 1123 host name, got "bad_name!"`}},
		{"bad gzip", "\x1f\x8bnot gzip", []string{"decompress gzip"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("file /x", []byte(tc.data))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	_, err := Parse("p", []byte("[x]\n"))
	if !errors.Is(err, ErrNoSettings) {
		t.Fatalf("err = %v, want ErrNoSettings", err)
	}
}

func TestDecodeGuestInfo(t *testing.T) {
	doc := "[settings]\nmotd = \"vm\"\n"
	for _, tc := range []struct {
		enc  string
		data string
	}{
		{"", doc},
		{"raw", doc},
		{"base64", "W3NldHRpbmdzXQptb3RkID0gInZtIgo="},
		{"b64", "W3NldHRpbmdz\nXQptb3RkID0gInZtIgo="},
	} {
		t.Run("enc="+tc.enc, func(t *testing.T) {
			b, err := DecodeGuestInfo(tc.data, tc.enc)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Parse("vmware", b)
			if err != nil || s["motd"] != "vm" {
				t.Fatalf("parse = %v, %v", s, err)
			}
		})
	}
	// gzip+base64 round trip.
	var b bytes.Buffer
	b.WriteString(encodeB64(gz(t, doc)))
	raw, err := DecodeGuestInfo(b.String(), "gzip+base64")
	if err != nil {
		t.Fatal(err)
	}
	if s, err := Parse("vmware", raw); err != nil || s["motd"] != "vm" {
		t.Fatalf("gzip+base64: %v, %v", s, err)
	}
	if _, err := DecodeGuestInfo("x", "rot13"); err == nil || !strings.Contains(err.Error(), "rot13") {
		t.Fatalf("unknown encoding: %v", err)
	}
	if _, err := DecodeGuestInfo("!!", "base64"); err == nil {
		t.Fatal("bad base64 accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("[settings]\nmotd = \"x\"\n"))
	f.Add([]byte(`{"settings":{"network":{"hostname":"h"}}}`))
	f.Add(gz(f, "[settings.kernel.sysctl]\n\"a.b\" = \"1\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz", data)
		if err == nil && s == nil {
			t.Fatal("nil settings without error")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "user data from fuzz: ") {
			t.Fatalf("error without provider: %v", err)
		}
	})
}
