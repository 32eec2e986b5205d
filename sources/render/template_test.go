package render

import (
	"errors"
	"strings"
	"testing"
)

func TestTemplates(t *testing.T) {
	model := map[string]any{
		"settings": map[string]any{
			"motd":            "hi",
			"network":         map[string]any{"hostname": "h1", "no-proxy": []any{"a", "b"}},
			"updates":         map[string]any{"seed": float64(1234), "version-lock": "latest"},
			"kernel":          map[string]any{"sysctl": map[string]any{"b.y": "2", "a.x": "1"}},
			"host-containers": map[string]any{"admin": map[string]any{"user-data": "aGVsbG8="}},
		},
		"os": map[string]any{"arch": "x86_64"},
	}
	for _, tc := range []struct{ name, src, want string }{
		{"plain", "{{ .settings.motd }}\n", "hi\n"},
		{"front matter narrows", "[required-extensions]\nnetwork = \"v1\"\n+++\n{{ .settings.network.hostname }}|{{ default \"none\" (setting \"motd\") }}", "h1|none"},
		{"helpers table form", "[required-extensions]\nstd = { version = \"v1\", helpers = [\"default\"] }\nmotd = \"v1\"\n++++\n{{ setting \"motd\" }}", "hi"},
		{"default when set", `{{ default "x" (setting "network.hostname") }}`, "h1"},
		{"join_array", `{{ join_array "," (setting "network.no-proxy") }}`, "a,b"},
		{"join_map", `{{ join_map "=" ";" (setting "kernel.sysctl") }}`, "a.x=1;b.y=2"},
		{"toml_encode int", `seed = {{ toml_encode .settings.updates.seed }}`, "seed = 1234"},
		{"toml_encode string", `v = {{ toml_encode "a\"b" }}`, `v = "a\"b"`},
		{"toml_encode list", `v = {{ toml_encode (setting "network.no-proxy") }}`, `v = ["a", "b"]`},
		{"base64_decode", `{{ base64_decode (index .settings "host-containers" "admin" "user-data") }}`, "hello"},
		{"is_ipv4", `{{ is_ipv4 "10.0.0.1" }} {{ is_ipv4 "::1" }} {{ is_ipv6 "::1" }}`, "true false true"},
		{"os", `{{ .os.arch }}`, "x86_64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, err := ParseTemplate(tc.name, []byte(tc.src))
			if err != nil {
				t.Fatal(err)
			}
			got, err := tp.Execute(model)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTemplateErrors(t *testing.T) {
	model := map[string]any{"settings": map[string]any{"motd": "hi"}}
	for _, tc := range []struct{ name, src, want string }{
		{"bad front matter", "[required-extensions\n+++\nx", "parse front matter of template"},
		{"unknown front matter key", "[other]\na = 1\n+++\nx", `unknown key "other`},
		{"bad body", "{{ .settings.motd ", "parse template"},
		{"unknown helper", "{{ handlebars_only 1 }}", `function "handlebars_only" not defined`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTemplate(tc.name, []byte(tc.src))
			if err == nil || !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	tp, err := ParseTemplate("strict", []byte("{{ .settings.network.hostname }}"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tp.Execute(model); err == nil || !strings.Contains(err.Error(), `no entry for key "network"`) {
		t.Fatalf("missing setting rendered: %v", err)
	}
}

func FuzzParseTemplate(f *testing.F) {
	f.Add("[required-extensions]\nmotd = \"v1\"\n+++\n{{ .settings.motd }}")
	f.Add("{{ default \"a\" (setting \"x\") }}")
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := ParseTemplate("fuzz", []byte(s))
		if err != nil {
			return
		}
		_, _ = tp.Execute(map[string]any{"settings": map[string]any{"motd": "m"}})
	})
}
