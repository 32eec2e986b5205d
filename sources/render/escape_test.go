package render

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestEscapeHelpers(t *testing.T) {
	t.Parallel()
	model := map[string]any{"settings": map[string]any{
		"motd":   "say \"hi\"\\ there",
		"bad":    "line\nbreak",
		"spaced": " x ",
		"esc":    "\x1b[2J\x7f\u0085",
		"n":      float64(3),
		"kernel": map[string]any{"sysctl": map[string]any{"net.ipv4.ip_forward": "1", "vm_x": "2"}},
	}}
	for _, tc := range []struct{ name, src, want, err string }{
		{"quote", `{{ quote (setting "motd") }}`, `"say \"hi\"\\ there"`, ""},
		{"quote controls", `{{ quote (setting "bad") }} {{ quote (setting "esc") }}`, `"line\nbreak" "\u001B[2J\u007F\u0085"`, ""},
		{"quote number", `{{ quote (setting "n") }}`, `"3"`, ""},
		{"quote unset", `{{ quote (setting "none") }}`, "", "quote: value is not set"},
		{"quote table", `{{ quote (setting "kernel") }}`, "", "quote: expected a string, number or boolean, got map[string]interface {}"},
		{"toml_key", `{{ range $k, $v := .settings.kernel.sysctl }}{{ toml_key $k }} = {{ toml_encode $v }};{{ end }}`, `"net.ipv4.ip_forward" = "1";vm_x = "2";`, ""},
		{"toml_key empty", `{{ toml_key "" }}`, `""`, ""},
		{"single_line", `{{ single_line (setting "motd") }}`, `say "hi"\ there`, ""},
		{"single_line break", `{{ single_line (setting "bad") }}`, "", "single_line: control character U+000A at byte 4"},
		{"ini_value", `x={{ ini_value (setting "n") }}`, "x=3", ""},
		{"ini_value break", `x={{ ini_value (setting "bad") }}`, "", "ini_value: single_line: control character U+000A"},
		{"ini_value blanks", `x={{ ini_value (setting "spaced") }}`, "", `ini_value: " x " has leading or trailing blanks`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, err := ParseTemplate(tc.name, []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			got, err := tp.Execute(model)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("rendered %q, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// FuzzQuote checks that quote's output reads back as the input in TOML
// and JSON, the formats it promises.
func FuzzQuote(f *testing.F) {
	for _, s := range []string{"plain", "a\"b\\c", "\n\t\r\x00\x1f\x7f\u0085", "é☃", `\u0041`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := quote(s)
		if err != nil {
			return // invalid UTF-8
		}
		var fromJSON string
		if err := json.Unmarshal([]byte(q), &fromJSON); err != nil || fromJSON != s {
			t.Fatalf("quote(%q) = %s: JSON reads %q, %v", s, q, fromJSON, err)
		}
		var doc struct{ V string }
		if _, err := toml.Decode("V = "+q, &doc); err != nil || doc.V != s {
			t.Fatalf("quote(%q) = %s: TOML reads %q, %v", s, q, doc.V, err)
		}
	})
}

// TestShippedTemplatesRefuseLineBreaks: the shipped templates embed their
// values with single_line, so a value with a line break (from a datastore
// the model did not check) fails the render instead of adding a line.
func TestShippedTemplatesRefuseLineBreaks(t *testing.T) {
	t.Parallel()
	settings := map[string]any{"motd": "hi\nthere", "network": map[string]any{"hostname": "h\nx"}}
	for _, name := range []string{"motd", "hostname"} {
		if out, err := shippedTemplate(t, name).Execute(map[string]any{"settings": settings}); err == nil || !strings.Contains(err.Error(), "single_line: control character U+000A") {
			t.Errorf("template %s rendered %q, %v; want single_line to refuse the line break", name, out, err)
		}
	}
}
