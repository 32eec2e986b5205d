package settings

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func decodeJSON(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

func TestValidateAccepts(t *testing.T) {
	for name, doc := range map[string]string{
		"motd":     `{"motd":"hi"}`,
		"unicode":  `{"motd":"Grüße \u00a0 ☃"}`,
		"network":  `{"network":{"hostname":"petrel-1.example.com","https-proxy":"http://proxy:3128","no-proxy":["localhost",".corp","10.0.0.0/8","*"]}}`,
		"updates":  `{"updates":{"metadata-base-url":"https://u.example/","targets-base-url":"https://t.example/","seed":2047,"version-lock":"v1.2.3","ignore-waves":true}}`,
		"latest":   `{"updates":{"version-lock":"latest","seed":0}}`,
		"bare ver": `{"updates":{"version-lock":"1.20.0"}}`,
		"host-containers": `{"host-containers":{"admin":{"enabled":true,"superpowered":true,
			"source":"public.ecr.aws/bottlerocket/bottlerocket-admin:v0.11.13","user-data":"aGVsbG8="}}}`,
		"bootstrap-containers": `{"bootstrap-containers":{"setup":{"source":"10.0.2.100:5000/petrel/setup:1","mode":"once",
			"essential":true,"user-data":""},"offline":{"source":"oci-archive:/local/images/setup.tar","mode":"always"}}}`,
		"container-registry": `{"container-registry":{"credentials":[{"registry":"registry.example.com","username":"u","password":"p"},
			{"registry":"10.0.2.100:5000","auth":"dTpw"}],"insecure-registries":["10.0.2.100:5000"]}}`,
		"ntp":    `{"ntp":{"time-servers":["time.aws.com","ntp://pool.ntp.org","169.254.169.123"]}}`,
		"kernel": `{"kernel":{"sysctl":{"net.ipv4.ip_forward":"1","kernel/pid_max":"4194304"},"lockdown":"integrity"}}`,
		"boot":   `{"boot":{"kernel-parameters":{"console":["tty0","ttyS0,115200n8"]},"init-parameters":{"log_level":["debug"]},"reboot-to-reconcile":true}}`,
		"kubernetes": `{"kubernetes":{"api-server":"https://k8s.example:443","cluster-certificate":"Zm9v","cluster-name":"c1",
			"cluster-dns-ip":"10.100.0.10","node-labels":{"example.com/role":"worker"},"node-taints":{"dedicated":["gpu:NoSchedule"]},"max-pods":110}}`,
		"dns list": `{"kubernetes":{"cluster-dns-ip":["10.100.0.10","fd00::a"]}}`,
		"ecs":      `{"ecs":{"cluster":"my-ecs","instance-attributes":{"attr1":"v"},"loglevel":"info","image-pull-behavior":"once"}}`,
		"null":     `{"motd":null,"network":{"hostname":null}}`,
		"empty":    `{}`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := Validate(decodeJSON(t, doc)); err != nil {
				t.Fatalf("Validate(%s) = %v, want nil", doc, err)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string // every problem, in order
	}{
		{"unknown top-level", `{"motdd":"x"}`, []string{"settings.motdd: unknown setting"}},
		{"unknown nested", `{"network":{"host-name":"x"}}`, []string{"settings.network.host-name: unknown setting"}},
		{"wrong type", `{"network":{"hostname":5}}`, []string{"settings.network.hostname: expected a string, got number"}},
		{"bad hostname", `{"network":{"hostname":"-bad_host"}}`, []string{`settings.network.hostname: expected an RFC 1123 host name, got "-bad_host"`}},
		{"long label", `{"network":{"hostname":"` + strings.Repeat("a", 64) + `"}}`, []string{"settings.network.hostname: expected an RFC 1123 host name"}},
		{"seed range", `{"updates":{"seed":2048}}`, []string{"settings.updates.seed: expected an integer from 0 to 2047, got 2048"}},
		{"seed fraction", `{"updates":{"seed":1.5}}`, []string{"settings.updates.seed: expected an integer from 0 to 2047, got 1.5"}},
		{"version lock", `{"updates":{"version-lock":"newest"}}`, []string{`settings.updates.version-lock: expected "latest", "vX.Y.Z" or "X.Y.Z"`}},
		{"url", `{"updates":{"metadata-base-url":"ftp://x"}}`, []string{"settings.updates.metadata-base-url: expected an http or https URL"}},
		{"bool", `{"host-containers":{"admin":{"enabled":"yes"}}}`, []string{"settings.host-containers.admin.enabled: expected a boolean, got string"}},
		{"base64", `{"host-containers":{"admin":{"user-data":"!!"}}}`, []string{"settings.host-containers.admin.user-data: expected base64"}},
		{"container name", `{"host-containers":{"-x":{"enabled":true}}}`, []string{"settings.host-containers.-x: bad name"}},
		{"image reference", `{"host-containers":{"admin":{"source":"Registry.example.com/Admin:latest tag"}}}`,
			[]string{`settings.host-containers.admin.source: expected a container image reference like registry/name:tag or oci-archive:/path, got "Registry.example.com/Admin:latest tag"`}},
		{"relative archive", `{"bootstrap-containers":{"b":{"source":"oci-archive:images/b.tar"}}}`,
			[]string{`settings.bootstrap-containers.b.source: expected oci-archive: followed by an absolute path without '..', got "oci-archive:images/b.tar"`}},
		{"bootstrap mode", `{"bootstrap-containers":{"b":{"mode":"twice"}}}`,
			[]string{`settings.bootstrap-containers.b.mode: expected one of off, once, always, got "twice"`}},
		{"bootstrap user data", `{"bootstrap-containers":{"b":{"user-data":"not base64"}}}`,
			[]string{"settings.bootstrap-containers.b.user-data: expected base64 (standard alphabet, padded): illegal base64 data at input byte 3"}},
		{"registry host", `{"container-registry":{"insecure-registries":["http://10.0.2.100:5000"]}}`,
			[]string{`settings.container-registry.insecure-registries.0: expected a registry host like registry.example.com or 10.0.2.100:5000, got "http://10.0.2.100:5000"`}},
		{"credential field", `{"container-registry":{"credentials":[{"registry":"r.example","token":"x"}]}}`,
			[]string{"settings.container-registry.credentials.0.token: unknown setting"}},
		{"sysctl key", `{"kernel":{"sysctl":{"net..x":"1"}}}`, []string{`settings.kernel.sysctl."net..x": bad name: expected a sysctl key`}},
		{"sysctl value", `{"kernel":{"sysctl":{"net.ipv4.ip_forward":1}}}`, []string{`settings.kernel.sysctl."net.ipv4.ip_forward": expected a string, got number`}},
		{"lockdown", `{"kernel":{"lockdown":"full"}}`, []string{`settings.kernel.lockdown: expected one of none, integrity, confidentiality, got "full"`}},
		{"list elem", `{"boot":{"kernel-parameters":{"console":["tty0",3]}}}`, []string{"settings.boot.kernel-parameters.console.1: expected a string, got number"}},
		{"not a list", `{"network":{"no-proxy":"localhost"}}`, []string{"settings.network.no-proxy: expected a list, got string"}},
		{"not a table", `{"network":"x"}`, []string{"settings.network: expected a table, got string"}},
		{"taint", `{"kubernetes":{"node-taints":{"k":"v:Sometimes"}}}`, []string{"settings.kubernetes.node-taints.k: expected a taint"}},
		{"motd line break", `{"motd":"hi\nthere"}`, []string{"settings.motd: expected text without control characters, got a line break (U+000A) at byte 2"}},
		{"motd escape", `{"motd":"\u001b[2J"}`, []string{"settings.motd: expected text without control characters, got a control character (U+001B) at byte 0"}},
		{"motd C1", `{"motd":"a\u0085"}`, []string{"settings.motd: expected text without control characters, got a control character (U+0085) at byte 1"}},
		{"hostname tab", `{"network":{"hostname":"a\tb"}}`, []string{"settings.network.hostname: expected text without control characters, got a tab (U+0009)"}},
		{"sysctl value CR", `{"kernel":{"sysctl":{"vm.x":"1\r"}}}`, []string{`settings.kernel.sysctl."vm.x": expected text without control characters, got a line break (U+000D)`}},
		{"list element", `{"boot":{"kernel-parameters":{"console":["tty0\n"]}}}`, []string{"settings.boot.kernel-parameters.console.0: expected text without control characters"}},
		{"every problem", `{"motd":1,"network":{"hostname":"a b","bogus":true},"updates":{"seed":-1}}`, []string{
			"settings.motd: expected a string, got number",
			"settings.network.bogus: unknown setting",
			"settings.network.hostname: expected an RFC 1123 host name",
			"settings.updates.seed: expected an integer from 0 to 2047, got -1",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantProblems(t, tc.doc, tc.want) })
	}
}

// wantProblems validates the JSON settings doc and checks that it gives
// exactly the problems want, in order, each matched by its prefix.
func wantProblems(t *testing.T, doc string, want []string) {
	t.Helper()
	err := Validate(decodeJSON(t, doc))
	var ve *ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate(%s) = %v, want a *ValidationError", doc, err)
	}
	if len(ve.Problems) != len(want) {
		t.Fatalf("got %d problems %v, want %d %v", len(ve.Problems), ve.Problems, len(want), want)
	}
	for i, w := range want {
		if got := ve.Problems[i].String(); !strings.HasPrefix(got, w) {
			t.Errorf("problem %d = %q, want prefix %q", i, got, w)
		}
	}
}

// TOML decodes integers as int64; they must validate like JSON numbers.
func TestValidateTOMLTypes(t *testing.T) {
	doc, err := decodeTOML("user-data", []byte("[updates]\nseed = 12\n[kubernetes]\nmax-pods = 29\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(doc); err != nil {
		t.Fatal(err)
	}
}

func FuzzValidateJSON(f *testing.F) {
	for _, s := range []string{`{"motd":"x"}`, `{"network":{"hostname":"a"}}`, `{"kernel":{"sysctl":{"a.b":"1"}}}`, `{"updates":{"seed":3}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) != nil {
			return
		}
		err := Validate(m)
		var ve *ValidationError
		if err != nil && (!errors.As(err, &ve) || len(ve.Problems) == 0) {
			t.Fatalf("unexpected error type %T", err)
		}
		if err != nil {
			for _, p := range ve.Problems {
				if !strings.HasPrefix(p.Path, "settings") || p.Msg == "" {
					t.Fatalf("problem without path or message: %+v", p)
				}
			}
		}
	})
}
