package render

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"go.yaml.in/yaml/v3"

	"github.com/petrel-os/petrel/sources/settings"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// kubernetesTemplates is where the Kubernetes variants' templates are
// kept: the kubernetes-host package installs them as they are.
const kubernetesTemplates = "../../packages/kubernetes-host/templates"

// userDataView reads a user-data file and returns the template data the
// API would give for it: {"settings": ..., "os": ...}, numbers as JSON
// numbers (float64), as GET / returns them.
func userDataView(t *testing.T, path string) map[string]any {
	t.Helper()
	var doc map[string]any
	if _, err := toml.DecodeFile(path, &doc); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var view map[string]any
	if err := json.Unmarshal(b, &view); err != nil {
		t.Fatal(err)
	}
	view["os"] = map[string]any{"variant_id": "metal-k8s-1.37", "arch": "x86_64"}
	return view
}

// renderShipped renders a shipped Kubernetes template with data.
func renderShipped(t *testing.T, name string, data map[string]any) []byte {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(kubernetesTemplates, name))
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := ParseTemplate(name, src)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tpl.Execute(data)
	if err != nil {
		t.Fatalf("render %s: %v", name, err)
	}
	return out
}

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (run with -update to accept):\n%s", name, path, got)
	}
}

// TestKubeletConfigClusterNode renders the Kubernetes templates from user
// data written for upstream's Kubernetes variants (a cluster node: API
// server, cluster certificate, bootstrap token, cluster DNS, labels,
// taints) and checks kubelet's configuration field by field, then every
// file against its golden copy (tools/e2e's TestKubeletAcceptsConfig runs
// the built kubelet on the golden kubelet configurations).
func TestKubeletConfigClusterNode(t *testing.T) {
	data := userDataView(t, "../settings/testdata/kubernetes-node.toml")

	var cfg map[string]any
	if err := yaml.Unmarshal(renderShipped(t, "kubelet-config", data), &cfg); err != nil {
		t.Fatalf("kubelet config is not YAML: %v", err)
	}
	for _, tc := range []struct {
		path string
		want any
	}{
		{"kind", "KubeletConfiguration"},
		{"apiVersion", "kubelet.config.k8s.io/v1beta1"},
		{"address", "0.0.0.0"},
		{"authentication.anonymous.enabled", false},
		{"authentication.webhook.enabled", true},
		{"authentication.x509.clientCAFile", "/etc/kubernetes/pki/ca.crt"},
		{"authorization.mode", "Webhook"},
		{"clusterDomain", "cluster.local"},
		{"clusterDNS", []any{"10.96.0.10"}},
		{"maxPods", 58},
		{"kubeReserved", map[string]any{"cpu": "100m", "memory": "512Mi", "ephemeral-storage": "1Gi"}},
		{"systemReserved", map[string]any{"cpu": "50m", "memory": "100Mi"}},
		{"evictionHard", map[string]any{"memory.available": "200Mi", "nodefs.available": "10%"}},
		{"registerWithTaints", []any{
			map[string]any{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
			map[string]any{"key": "dedicated", "value": "gpu", "effect": "NoExecute"},
			map[string]any{"key": "special", "value": "true", "effect": "PreferNoSchedule"},
		}},
		{"cgroupDriver", "systemd"},
		{"containerRuntimeEndpoint", "unix:///run/containerd/containerd.sock"},
		{"staticPodPath", "/etc/kubernetes/static-pods/"},
		{"resolvConf", "/etc/resolv.conf"},
		{"readOnlyPort", 0},
		{"protectKernelDefaults", true},
		{"serverTLSBootstrap", true},
		{"podPidsLimit", 1024},
		{"seccompDefault", true},
		{"containerLogMaxSize", "50Mi"},
		{"containerLogMaxFiles", 4},
		{"imageGCHighThresholdPercent", 80},
		{"imageGCLowThresholdPercent", 60},
		{"kubeAPIQPS", 15},
		{"kubeAPIBurst", 30},
		{"registryPullQPS", 10},
		{"registryBurst", 20},
		{"eventRecordQPS", 25},
		{"eventBurst", 50},
		{"cpuManagerPolicy", "static"},
		{"topologyManagerPolicy", "best-effort"},
		{"shutdownGracePeriod", "30s"},
		{"shutdownGracePeriodCriticalPods", "10s"},
		{"allowedUnsafeSysctls", []any{"net.core.somaxconn"}},
		{"failSwapOn", false},
		{"failCgroupV1", false},
	} {
		if got := yamlPath(cfg, tc.path); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("kubelet config %s = %#v, want %#v", tc.path, got, tc.want)
		}
	}

	dropIn := string(renderShipped(t, "kubelet-exec-start-conf", data))
	for _, want := range []string{
		"  --kubeconfig /etc/kubernetes/kubelet/kubeconfig \\\n",
		"  --bootstrap-kubeconfig /etc/kubernetes/kubelet/bootstrap-kubeconfig \\\n",
		"  --node-ip 192.0.2.10 \\\n",
		"  --node-labels node.example.com/role=worker,topology.example.com/zone=zone-a \\\n",
	} {
		if !strings.Contains(dropIn, want) {
			t.Errorf("kubelet drop-in lacks %q:\n%s", want, dropIn)
		}
	}

	var kc struct {
		Clusters []struct {
			Cluster struct {
				CA     string `yaml:"certificate-authority"`
				Server string `yaml:"server"`
			} `yaml:"cluster"`
		} `yaml:"clusters"`
		Users []struct {
			User struct {
				Token string `yaml:"token"`
			} `yaml:"user"`
		} `yaml:"users"`
	}
	if err := yaml.Unmarshal(renderShipped(t, "kubelet-bootstrap-kubeconfig", data), &kc); err != nil {
		t.Fatal(err)
	}
	if len(kc.Clusters) != 1 || kc.Clusters[0].Cluster.Server != "https://api.cluster.example:6443" || kc.Clusters[0].Cluster.CA != "/etc/kubernetes/pki/ca.crt" {
		t.Errorf("bootstrap kubeconfig clusters = %+v", kc.Clusters)
	}
	if len(kc.Users) != 1 || kc.Users[0].User.Token != "abcdef.0123456789abcdef" {
		t.Errorf("bootstrap kubeconfig users = %+v", kc.Users)
	}
	if ca := string(renderShipped(t, "kubernetes-ca-crt", data)); !strings.HasPrefix(ca, "-----BEGIN CERTIFICATE-----\n") {
		t.Errorf("cluster certificate = %q", ca)
	}

	var ctd map[string]any
	ctdText := renderShipped(t, "containerd-config-toml", data)
	if _, err := toml.Decode(string(ctdText), &ctd); err != nil {
		t.Fatalf("containerd config is not TOML: %v\n%s", err, ctdText)
	}
	cri := yamlPath(ctd, "plugins.io\\.containerd\\.grpc\\.v1\\.cri")
	for _, tc := range []struct {
		path string
		want any
	}{
		{"sandbox_image", "localhost/petrel/pause:3.10.2"},
		{"max_concurrent_downloads", int64(4)},
		{"enable_unprivileged_ports", true},
		{"enable_selinux", true},
		{"selinux_category_range", int64(1024)},
		{"containerd.runtimes.runc.options.SystemdCgroup", true},
		{"registry.mirrors.docker\\.io.endpoint", []any{"https://mirror.example.com", "https://mirror2.example.com"}},
		{"registry.configs.registry\\.cluster\\.example.auth", map[string]any{"username": "puller", "password": "secret"}},
	} {
		if got := yamlPath(cri, tc.path); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("containerd CRI %s = %#v, want %#v", tc.path, got, tc.want)
		}
	}

	dns, _ := yamlPath(data, "settings.dns").(map[string]any)
	r, err := ResolverFor(dns, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := string(r.Render()); !strings.HasSuffix(got, "\nnameserver 192.0.2.53\nnameserver 2001:db8::53\nsearch cluster.example example.com\n") {
		t.Errorf("resolv.conf =\n%s", got)
	}
	if got := string(renderShipped(t, "hosts", data)); !strings.HasSuffix(got, "\n192.0.2.20 registry.cluster.example\n") {
		t.Errorf("hosts =\n%s", got)
	}

	for _, name := range []string{"kubelet-config", "kubelet-exec-start-conf", "kubelet-bootstrap-kubeconfig", "containerd-config-toml"} {
		golden(t, filepath.Join("kubernetes-node", name), renderShipped(t, name, data))
	}
}

// TestKubeletConfigStandalone: standalone mode listens on loopback,
// serves anyone there, and names no kubeconfig; unset settings take
// upstream's defaults.
func TestKubeletConfigStandalone(t *testing.T) {
	data := map[string]any{"settings": map[string]any{"kubernetes": map[string]any{"standalone-mode": true}}, "os": map[string]any{}}
	var cfg map[string]any
	if err := yaml.Unmarshal(renderShipped(t, "kubelet-config", data), &cfg); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want any
	}{
		{"address", "127.0.0.1"},
		{"authentication.anonymous.enabled", true},
		{"authentication.webhook.enabled", false},
		{"authorization.mode", "AlwaysAllow"},
		{"maxPods", 110},
		{"kubeReserved.memory", "1465Mi"},
		{"kubeReserved.ephemeral-storage", "1Gi"},
		{"evictionHard", map[string]any{"memory.available": "100Mi", "nodefs.available": "10%", "nodefs.inodesFree": "5%"}},
		{"podPidsLimit", 1048576},
		{"serverTLSBootstrap", nil},
		{"clusterDNS", nil},
	} {
		if got := yamlPath(cfg, tc.path); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("kubelet config %s = %#v, want %#v", tc.path, got, tc.want)
		}
	}
	if dropIn := string(renderShipped(t, "kubelet-exec-start-conf", data)); strings.Contains(dropIn, "kubeconfig") {
		t.Errorf("standalone drop-in names a kubeconfig:\n%s", dropIn)
	}
	if kc := renderShipped(t, "kubelet-bootstrap-kubeconfig", data); len(bytes.TrimSpace(kc)) != 0 {
		t.Errorf("standalone bootstrap kubeconfig = %q, want empty", kc)
	}
	for _, name := range []string{"kubelet-config", "containerd-config-toml"} {
		golden(t, filepath.Join("kubernetes-standalone", name), renderShipped(t, name, data))
	}
}

// yamlPath walks a dotted path ("\." for a dot inside a key) through
// nested maps; nil when absent.
func yamlPath(v any, path string) any {
	var segs []string
	cur := ""
	for i := 0; i < len(path); i++ {
		switch {
		case path[i] == '\\' && i+1 < len(path):
			i++
			cur += string(path[i])
		case path[i] == '.':
			segs, cur = append(segs, cur), ""
		default:
			cur += string(path[i])
		}
	}
	segs = append(segs, cur)
	for _, s := range segs {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[s]
	}
	return v
}

func TestReserveCPU(t *testing.T) {
	for cores, want := range map[int]string{1: "60m", 2: "70m", 4: "80m", 8: "90m", 96: "310m"} {
		if got := reserveCPU(cores); got != want {
			t.Errorf("reserveCPU(%d) = %s, want %s", cores, got, want)
		}
	}
}

// TestKubernetesDefaults merges the shipped defaults of a Kubernetes
// variant (the dev defaults and kubernetes-host's) as storewolf does, and
// checks that every configuration file's template is shipped and parses.
func TestKubernetesDefaults(t *testing.T) {
	dir := t.TempDir()
	srcs, err := filepath.Glob("../settings/defaults/*.toml")
	if err != nil || len(srcs) == 0 {
		t.Fatalf("no dev defaults: %v", err)
	}
	srcs = append(srcs, "../../packages/kubernetes-host/50-kubernetes.toml")
	for _, s := range srcs {
		data, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(s)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := settings.LoadDefaults(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for svc, restart := range map[string]string{
		"kubelet":     "/usr/bin/systemctl try-restart kubelet.service",
		"containerd":  "/usr/bin/systemctl try-restart containerd.service",
		"static-pods": "/usr/bin/settings-applier write-static-pods",
	} {
		if got := d.Services[svc].RestartCommands; len(got) != 1 || got[0] != restart {
			t.Errorf("service %s restarts with %q, want [%s]", svc, got, restart)
		}
	}
	// Which services a changed setting affects: the most specific metadata
	// wins, so a static pod's change restarts neither kubelet nor containerd.
	for key, want := range map[string]string{
		"settings.kubernetes":                           "[kubelet]",
		"settings.kubernetes.static-pods":               "[static-pods]",
		"settings.kubernetes.pod-infra-container-image": "[containerd]",
		"settings.container-registry":                   "[containerd host-containers]",
		"settings.container-runtime":                    "[containerd]",
		"settings.dns":                                  "[dns]",
		"settings.network.hosts":                        "[dns]",
	} {
		meta, _ := yamlPath(d.Metadata, key).(map[string]any)
		if got := fmt.Sprint(meta["affected-services"]); got != want {
			t.Errorf("%s affects %s, want %s", key, got, want)
		}
	}
	for name, f := range d.ConfigurationFiles {
		base := filepath.Base(f.TemplatePath)
		var src []byte
		for _, dir := range []string{kubernetesTemplates, "templates"} {
			if data, err := os.ReadFile(filepath.Join(dir, base)); err == nil {
				src = data
			}
		}
		if src == nil {
			t.Errorf("configuration file %s: template %s is not shipped", name, f.TemplatePath)
			continue
		}
		if _, err := ParseTemplate(base, src); err != nil {
			t.Errorf("configuration file %s: %v", name, err)
		}
	}
}
