package settings

import (
	"encoding/base64"
	"os"
	"strings"
	"testing"
)

// TestKubernetesUserData: user data written for upstream's Kubernetes
// variants (a cluster node with every namespace a node uses) is accepted.
func TestKubernetesUserData(t *testing.T) {
	data, err := os.ReadFile("testdata/kubernetes-node.toml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := decodeTOML("kubernetes-node.toml", data)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := doc["settings"].(map[string]any)
	if !ok {
		t.Fatal("no [settings] table")
	}
	if err := Validate(s); err != nil {
		t.Fatal(err)
	}
	// Upstream's lists of tables and of lists are stored whole, as upstream
	// stores them.
	kvs, err := Flatten([]string{"settings"}, s)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]string{}
	for _, kv := range kvs {
		stored[kv.Key.Name()] = string(kv.Value)
	}
	for key, want := range map[string]string{
		"settings.container-registry.mirrors": `[{"endpoint":["https://mirror.example.com","https://mirror2.example.com"],"registry":"docker.io"}]`,
		"settings.network.hosts":              `[["192.0.2.20",["registry.cluster.example"]]]`,
	} {
		if stored[key] != want {
			t.Errorf("%s stored as %s, want %s", key, stored[key], want)
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestKubernetesAccepts(t *testing.T) {
	pod := b64("apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers: []\n")
	jsonPod := b64(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"j"}}`)
	for name, doc := range map[string]string{
		"static pods":      `{"kubernetes":{"standalone-mode":true,"static-pods":{"web":{"enabled":true,"manifest":"` + pod + `"},"j":{"enabled":false,"manifest":"` + jsonPod + `"}}}}`,
		"mirrors as table": `{"container-registry":{"mirrors":{"docker.io":["https://m.example"],"*":["https://all.example"]}}}`,
		"mirrors as list":  `{"container-registry":{"mirrors":[{"registry":"127.0.0.1:5000","endpoint":["http://10.0.2.100:5000"]}]}}`,
		"credentials":      `{"container-registry":{"credentials":[{"registry":"r.example","auth":"` + b64("u:p") + `"}]}}`,
		"hosts":            `{"network":{"hosts":[["10.0.0.1",["a.example","b"]],["fd00::1",[]]]}}`,
		"modules":          `{"kernel":{"modules":{"sctp":{"allowed":false},"nf_conntrack":{"allowed":true,"autoload":true}}}}`,
		"dns":              `{"dns":{"name-servers":["10.0.2.3"],"search-list":["example.com"]}}`,
		"credential providers": `{"kubernetes":{"credential-providers":{"ecr-credential-provider":{"enabled":true,"cache-duration":"30m",
			"image-patterns":["*.dkr.ecr.*.amazonaws.com"],"environment":{"AWS_PROFILE":"x"}}}}}`,
		"reserved memory": `{"kubernetes":{"memory-manager-policy":"Static","memory-manager-reserved-memory":{"0":{"enabled":true,"memory":"1Gi"}},"reserved-cpus":"0-1,4"}}`,
		"unlimited pids":  `{"kubernetes":{"pod-pids-limit":-1}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if err := Validate(decodeJSON(t, doc)); err != nil {
				t.Fatalf("Validate(%s) = %v, want nil", doc, err)
			}
		})
	}
}

func TestKubernetesRejects(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"manifest not base64", `{"kubernetes":{"static-pods":{"web":{"manifest":"!!"}}}}`,
			[]string{"settings.kubernetes.static-pods.web.manifest: expected base64 (standard alphabet, padded) of a pod manifest"}},
		{"manifest not YAML", `{"kubernetes":{"static-pods":{"web":{"manifest":"` + b64("apiVersion: v1\nkind: Pod\n  metadata: [\n") + `"}}}}`,
			[]string{"settings.kubernetes.static-pods.web.manifest: expected a pod manifest (YAML or JSON) once base64-decoded: line 3"}},
		{"manifest not a pod", `{"kubernetes":{"static-pods":{"web":{"manifest":"` + b64("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n") + `"}}}}`,
			[]string{`settings.kubernetes.static-pods.web.manifest: expected a pod manifest with apiVersion "v1" and kind "Pod", got apiVersion "apps/v1" and kind "Deployment"`}},
		{"manifest without name", `{"kubernetes":{"static-pods":{"web":{"manifest":"` + b64("apiVersion: v1\nkind: Pod\n") + `"}}}}`,
			[]string{`settings.kubernetes.static-pods.web.manifest: expected a pod manifest with metadata.name an RFC 1123 label, got ""`}},
		{"static pod name", `{"kubernetes":{"static-pods":{"Web_1":{"enabled":true}}}}`,
			[]string{`settings.kubernetes.static-pods.Web_1: bad name: expected a name of lower-case letters`}},
		{"bootstrap token", `{"kubernetes":{"bootstrap-token":"abc"}}`, []string{"settings.kubernetes.bootstrap-token: expected a bootstrap token"}},
		{"quantity", `{"kubernetes":{"kube-reserved":{"memory":"lots"}}}`, []string{`settings.kubernetes.kube-reserved.memory: expected a quantity like 100Mi, 0.5 or 10%, got "lots"`}},
		{"unknown kubelet key", `{"kubernetes":{"max-podz":3}}`, []string{"settings.kubernetes.max-podz: unknown setting"}},
		{"mirrors", `{"container-registry":{"mirrors":"docker.io"}}`, []string{"settings.container-registry.mirrors: expected a table or a list, got string"}},
		{"mirror endpoint", `{"container-registry":{"mirrors":[{"registry":"docker.io","endpoint":["ftp://x"]}]}}`,
			[]string{"settings.container-registry.mirrors.0.endpoint.0: expected an http or https URL"}},
		{"hosts entry", `{"network":{"hosts":[["10.0.0.1","a.example"],["nope",["b"]]]}}`, []string{
			"settings.network.hosts.0.1: expected a list, got string",
			`settings.network.hosts.1.0: expected an IPv4 or IPv6 address, got "nope"`,
		}},
		{"dns", `{"dns":{"name-servers":["dns.example"]}}`, []string{`settings.dns.name-servers.0: expected an IPv4 or IPv6 address, got "dns.example"`}},
		{"module", `{"kernel":{"modules":{"bad/name":{"allowed":true}}}}`, []string{`settings.kernel.modules.bad/name: bad name: expected a kernel module name`}},
		{"gc percent", `{"kubernetes":{"image-gc-high-threshold-percent":101}}`, []string{"settings.kubernetes.image-gc-high-threshold-percent: expected an integer from 0 to 100, got 101"}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantProblems(t, tc.doc, tc.want) })
	}
}

// FuzzPodManifest: the manifest check returns a message or "" for any
// input, and never panics.
func FuzzPodManifest(f *testing.F) {
	for _, s := range []string{"apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n", `{"apiVersion":"v1"}`, "- [", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		msg := podManifestProblem(b64(s))
		if msg != "" && !strings.HasPrefix(msg, "expected ") {
			t.Fatalf("message %q does not say what was expected", msg)
		}
	})
}
