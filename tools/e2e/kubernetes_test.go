package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/petrel-os/petrel/sources/selinux"
	"github.com/petrel-os/petrel/tools/qemu"
)

// k8sVariant is the Kubernetes variant the end-to-end test boots.
const k8sVariant = "metal-k8s-1.37"

// The guest reaches the test's registry at this address (a guest forward
// to a registry on this machine's loopback), over plain HTTP through the
// mirror the user data configures.
const registryGuestAddr = "10.0.2.100:5000"

// relayPort is the guest port where the test's pod relays connections to
// kubelet's API, which standalone mode serves on the guest's loopback
// only; a host forward reaches it.
const relayPort = 18250

// pushBusybox serves an in-memory registry on this machine's loopback and
// pushes petrel/busybox:1 to it: one layer holding this machine's static
// busybox (Debian's busybox-static) as /bin/busybox. It returns the
// registry's address.
func pushBusybox(t *testing.T) string {
	t.Helper()
	bin, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	for _, h := range []*tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin))},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tw.Write(bin); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layerDigest := digestOf(layer.Bytes())
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Entrypoint": []string{"/bin/busybox"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digestOf(config), "size": len(config)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": layer.Len()}},
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	base := "http://" + ln.Addr().String() + "/v2/petrel/busybox"
	for _, blob := range [][]byte{layer.Bytes(), config} {
		put(t, http.MethodPost, base+"/blobs/uploads/?digest="+digestOf(blob), "application/octet-stream", blob)
	}
	put(t, http.MethodPut, base+"/manifests/1", "application/vnd.oci.image.manifest.v1+json", manifest)
	return ln.Addr().String()
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func put(t *testing.T, method, url, contentType string, body []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: %s: %s", method, url, resp.Status, msg)
	}
}

// podManifest is a host-network static pod running busybox commands, one
// container per command; hostPaths (container path → host path) are
// mounted read-only into every container.
func podManifest(name string, containers map[string][]string, hostPaths map[string]string) string {
	var cs, vols []any
	var mounts []any
	for i, p := range sortedKeys(hostPaths) {
		v := fmt.Sprintf("host-%d", i)
		vols = append(vols, map[string]any{"name": v, "hostPath": map[string]any{"path": hostPaths[p]}})
		mounts = append(mounts, map[string]any{"name": v, "mountPath": p, "readOnly": true})
	}
	for _, n := range sortedKeys(containers) {
		cs = append(cs, map[string]any{"name": n, "image": registryGuestAddr + "/petrel/busybox:1", "command": containers[n], "volumeMounts": mounts})
	}
	m, _ := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": "default"},
		"spec":     map[string]any{"hostNetwork": true, "containers": cs, "volumes": vols},
	})
	return base64.StdEncoding.EncodeToString(m)
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// kubeletClient talks to kubelet's API through the host forward and the
// relay container (kubelet's serving certificate is self-signed).
type kubeletClient struct {
	base string
	http *http.Client
}

func (k *kubeletClient) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := k.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return body, err
}

// podStatus is the part of kubelet's /pods answer the test reads.
type podStatus struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Status struct {
		Phase             string `json:"phase"`
		ContainerStatuses []struct {
			Name         string `json:"name"`
			RestartCount int    `json:"restartCount"`
			Ready        bool   `json:"ready"`
		} `json:"containerStatuses"`
	} `json:"status"`
}

func (k *kubeletClient) pods(ctx context.Context) (map[string]podStatus, error) {
	body, err := k.get(ctx, "/pods")
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []podStatus `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("decode /pods: %w", err)
	}
	out := map[string]podStatus{}
	for _, p := range list.Items {
		out[p.Metadata.Name] = p
	}
	return out, nil
}

// waitLog waits until pod's container is running and its log holds want.
func (k *kubeletClient) waitLog(t *testing.T, pod, container, want string, timeout time.Duration) podStatus {
	t.Helper()
	var last string
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(3 * time.Second) {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		pods, err := k.pods(ctx)
		if err != nil {
			cancel()
			last = err.Error()
			continue
		}
		p, ok := pods[pod]
		if !ok || p.Status.Phase != "Running" {
			cancel()
			last = fmt.Sprintf("pod %s: %+v (pods: %v)", pod, p.Status, sortedKeys(pods))
			continue
		}
		logs, err := k.get(ctx, "/containerLogs/default/"+pod+"/"+container)
		cancel()
		if err == nil && strings.Contains(string(logs), want) {
			return p
		}
		last = fmt.Sprintf("log of %s/%s: %q, %v", pod, container, logs, err)
	}
	t.Fatalf("pod %s container %s not running with %q in its log within %v; last: %s", pod, container, want, timeout, last)
	return podStatus{}
}

// printLabel is a shell command that prints a container's SELinux
// process label after "PETREL-LABEL ".
const printLabel = `echo "PETREL-LABEL $(/bin/busybox cat /proc/self/attr/current)"`

// workloadLabelRE is the label of a workload container: container_t with
// two categories (submatch 1 the label, 2 its categories).
var workloadLabelRE = regexp.MustCompile(`PETREL-LABEL (system_u:system_r:container_t:s0:(c[0-9]+,c[0-9]+))\x00?\n`)

// label returns the label a pod's container printed with printLabel and
// its categories; it fails the test unless it is a workload container's.
func (k *kubeletClient) label(t *testing.T, pod, container string) [2]string {
	t.Helper()
	logs, err := k.get(t.Context(), "/containerLogs/default/"+pod+"/"+container)
	if err != nil {
		t.Fatal(err)
	}
	m := workloadLabelRE.FindSubmatch(logs)
	if m == nil {
		t.Fatalf("log of %s/%s has no label matching %s:\n%s", pod, container, workloadLabelRE, logs)
	}
	return [2]string{string(m[1]), string(m[2])}
}

func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestKubernetesStandalone boots metal-k8s-1.37 with upstream-style user
// data: standalone mode, a registry mirror for the test's registry on
// this machine's loopback (plain HTTP, through a guest forward), and a
// static pod whose image comes from it. The pod reaches Running and its
// marker line is read from its log through kubelet's API (reached by a
// host forward and the pod's relay container), with the host's resolver
// from settings.dns in its resolv.conf. A second static pod added
// with `apiclient set` starts without a reboot; a malformed manifest is
// refused with the setting named and does not disturb the running pods.
func TestKubernetesStandalone(t *testing.T) {
	img, _ := builtVariant(t, k8sVariant)
	reg := pushBusybox(t)
	relay := freeLoopbackPort(t)
	const node = "k8s-e2e"
	first := podManifest("marker", map[string][]string{
		// The pod's resolver is the host's (a host-network pod), made from
		// settings.dns (QEMU's restricted network gives no name server by
		// DHCP: networkd's link state says DNS=); the host's file and
		// networkd's link state go to the log too, which a failure shows.
		"marker": {"/bin/busybox", "sh", "-c", "echo PETREL-MARKER-1; " + printLabel + "; /bin/busybox cat /etc/resolv.conf; /bin/busybox sleep 100; " +
			"/bin/busybox cat /etc/resolv.conf /host/etc/resolv.conf /host/links/*; exec /bin/busybox sleep 1000000"},
		"relay": {"/bin/busybox", "nc", "-ll", "-p", fmt.Sprint(relayPort), "-e", "/bin/busybox", "nc", "127.0.0.1", "10250"},
	}, map[string]string{"/host/links": "/run/systemd/netif/links", "/host/etc": "/etc"})
	ud := fmt.Sprintf(`[settings.network]
hostname = %q

[settings.dns]
name-servers = ["10.0.2.3"]
search-list = ["petrel.test"]

[settings.kubernetes]
standalone-mode = true

[settings.kubernetes.static-pods.marker]
enabled = true
manifest = %q

[[settings.container-registry.mirrors]]
registry = %q
endpoint = ["http://%s"]
`, node, first, registryGuestAddr, registryGuestAddr)
	drive := filepath.Join(t.TempDir(), "cidata.img")
	if err := qemu.ConfigDrive(t.Context(), []byte(ud), drive); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	vm, _, sock := bootWithAPI(t, qemu.Options{Image: img, Snapshot: true, Firmware: qemu.UEFI, ConfigDrive: drive, MemoryMiB: 2048,
		GuestForwards: []qemu.GuestForward{{Guest: registryGuestAddr, Host: reg}},
		HostForwards:  []qemu.HostForward{{Host: relay, GuestPort: relayPort}}})
	if !strings.Contains(consoleText(vm), "petrel: static pod marker written") {
		t.Errorf("console lacks the static pod's line %q", "petrel: static pod marker written")
	}

	k := &kubeletClient{base: "https://" + relay, http: &http.Client{Timeout: 20 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}} // kubelet's self-signed serving certificate
	p := k.waitLog(t, "marker-"+node, "marker", "PETREL-MARKER-1", 10*time.Minute)
	k.waitLog(t, "marker-"+node, "marker", "nameserver 10.0.2.3\nsearch petrel.test\n", 3*time.Minute)
	t.Logf("static pod marker-%s running with its marker in its log %.0fs after the VM started", node, time.Since(start).Seconds())

	// A second static pod, added while the host runs.
	added := time.Now()
	second := podManifest("second", map[string][]string{
		"second": {"/bin/busybox", "sh", "-c", "echo PETREL-MARKER-2; " + printLabel + "; exec /bin/busybox sleep 1000000"},
	}, nil)
	apiclientOK(t, sock, "set", "kubernetes.static-pods.second.enabled=true", "kubernetes.static-pods.second.manifest="+second)
	k.waitLog(t, "second-"+node, "second", "PETREL-MARKER-2", 5*time.Minute)
	t.Logf("static pod second-%s running %.1fs after apiclient set", node, time.Since(added).Seconds())

	// Workload containers run confined: container_t, each pod with its
	// own pair of categories (containerd's enable_selinux and the
	// policy's lxc_contexts).
	firstLabel := k.label(t, "marker-"+node, "marker")
	secondLabel := k.label(t, "second-"+node, "second")
	t.Logf("SELinux labels: marker-%s %s, second-%s %s", node, firstLabel, node, secondLabel)
	if firstLabel[1] == secondLabel[1] {
		t.Errorf("pods marker-%s and second-%s share the categories %s", node, node, firstLabel[1])
	}

	// A malformed manifest: refused with the setting named; nothing changes.
	bad := base64.StdEncoding.EncodeToString([]byte("apiVersion: v1\nkind: Pod\nmetadata: [\n"))
	out, errOut, code := runAPIClient(t, sock, "set", "kubernetes.static-pods.bad.enabled=true", "kubernetes.static-pods.bad.manifest="+bad)
	if code == 0 || !strings.Contains(errOut, "settings.kubernetes.static-pods.bad.manifest: expected a pod manifest (YAML or JSON) once base64-decoded") {
		t.Errorf("apiclient set of a malformed manifest: exit %d, stdout %q, stderr %q; want a failure naming settings.kubernetes.static-pods.bad.manifest", code, out, errOut)
	}
	if m := getJSON(t, sock, "settings.kubernetes.static-pods")["settings"]; strings.Contains(fmt.Sprint(m), "bad") {
		t.Errorf("the malformed pod reached the settings: %v", m)
	}
	time.Sleep(10 * time.Second)
	pods, err := k.pods(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"marker-" + node, "second-" + node} {
		got := pods[name]
		if got.Status.Phase != "Running" {
			t.Errorf("pod %s is %q after the malformed manifest, want Running", name, got.Status.Phase)
		}
		for _, c := range got.Status.ContainerStatuses {
			if c.RestartCount != 0 {
				t.Errorf("pod %s container %s restarted %d times", name, c.Name, c.RestartCount)
			}
		}
	}
	if len(p.Status.ContainerStatuses) != 2 {
		t.Errorf("pod marker-%s has %d containers, want 2", node, len(p.Status.ContainerStatuses))
	}

	// Nothing was denied through boot, two pods' starts and a settings
	// change (the kernel prints every AVC line on the console).
	console := consoleText(vm)
	for _, d := range selinux.Denials(console) {
		t.Errorf("AVC denial on the console: %s", d)
	}
	// A label the policy does not know (kubelet's container_file_t for its
	// plugins directory, an alias of data_t) would leave the file unlabeled.
	for _, l := range strings.Split(console, "\n") {
		if strings.Contains(l, "is not valid (left unmapped)") {
			t.Errorf("the policy lacks a label the node uses: %s", l)
		}
	}

	// Figures for docs/performance.md: memory of kubelet and containerd
	// (kubelet's summary of its system containers).
	if body, err := k.get(t.Context(), "/stats/summary"); err != nil {
		t.Errorf("kubelet summary: %v", err)
	} else {
		var s struct {
			Node struct {
				SystemContainers []struct {
					Name   string `json:"name"`
					Memory struct {
						WorkingSetBytes uint64 `json:"workingSetBytes"`
						RSSBytes        uint64 `json:"rssBytes"`
					} `json:"memory"`
				} `json:"systemContainers"`
			} `json:"node"`
		}
		if err := json.Unmarshal(body, &s); err != nil {
			t.Errorf("decode kubelet summary: %v", err)
		}
		seen := map[string]bool{}
		for _, c := range s.Node.SystemContainers {
			seen[c.Name] = true
			t.Logf("memory of %s: working set %.1f MiB, RSS %.1f MiB", c.Name, float64(c.Memory.WorkingSetBytes)/(1<<20), float64(c.Memory.RSSBytes)/(1<<20))
		}
		// "runtime" (containerd) is there only with --runtime-cgroups, a flag
		// of the drop-in rendered at boot: kubelet ran with its command line.
		if !seen["kubelet"] || !seen["runtime"] {
			t.Errorf("kubelet's system containers are %v, want kubelet and runtime", seen)
		}
	}
}

// builtKubelet builds the kubernetes-1.37 package (cached unless its
// inputs changed) and returns its kubelet, unpacked from the RPM.
func builtKubelet(t *testing.T) string {
	t.Helper()
	buildctlOK(t, "build-package", "kubernetes-1.37")
	rpms, err := filepath.Glob(filepath.Join(projectRoot(t), "build", "rpms", "kubernetes-1.37", "*.rpm"))
	if err != nil || len(rpms) != 1 {
		t.Fatalf("RPMs of kubernetes-1.37: %v %v", rpms, err)
	}
	dir := t.TempDir()
	cpioArchive := filepath.Join(dir, "kubelet.cpio")
	if err := os.WriteFile(cpioArchive, []byte(runOK(t, "rpm2cpio", rpms[0])), 0o644); err != nil {
		t.Fatal(err)
	}
	runOK(t, "cpio", "-idm", "--quiet", "-D", dir, "-F", cpioArchive, "./usr/bin/kubelet")
	return filepath.Join(dir, "usr", "bin", "kubelet")
}

// TestKubeletAcceptsConfig runs the built kubelet on the kubelet
// configurations that sources/render's tests render from upstream-style
// user data (their golden files): kubelet must decode them strictly,
// validate them and go on past them (to its version line, or to making
// its directories in standalone mode). It runs as nobody, so it cannot
// change this machine. A configuration kubelet refuses shows the check
// can fail.
func TestKubeletAcceptsConfig(t *testing.T) {
	kubelet := builtKubelet(t)
	if out, err := exec.Command(kubelet, "--version").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "Kubernetes v1.37.2" {
		t.Errorf("kubelet --version = %q, %v; want Kubernetes v1.37.2", out, err)
	}
	dir := t.TempDir()
	// kubelet runs as nobody: the binary and the configurations must be
	// reachable (t.TempDir makes 0700 directories).
	for _, d := range []string{dir, filepath.Dir(dir), filepath.Dir(kubelet), filepath.Dir(filepath.Dir(kubelet)), filepath.Dir(filepath.Dir(filepath.Dir(kubelet))), filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(kubelet))))} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("kind: KubeletConfiguration\napiVersion: kubelet.config.k8s.io/v1beta1\nmaxPods: -5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	clusterFlags := []string{"--kubeconfig", "/nonexistent/kubeconfig", "--bootstrap-kubeconfig", "/nonexistent/bootstrap-kubeconfig"}
	for _, tc := range []struct {
		name, config string
		flags        []string // as the rendered drop-in gives them
		ok           bool
		want         string // how far kubelet gets past its configuration
	}{
		{"cluster-node", "../../sources/render/testdata/kubernetes-node/kubelet-config", clusterFlags, true,
			`"Kubelet version" kubeletVersion="v1.37.2"`},
		{"standalone", "../../sources/render/testdata/kubernetes-standalone/kubelet-config", nil, true,
			"failed to construct kubelet dependencies: mkdir /var/lib/kubelet: permission denied"},
		{"refused", bad, clusterFlags, false,
			"failed to validate kubelet configuration, error: [invalid configuration: maxPods (--max-pods) -5 must not be a negative number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, err := os.ReadFile(tc.config)
			if err != nil {
				t.Fatal(err)
			}
			cfg := filepath.Join(dir, tc.name+".yaml")
			if err := os.WriteFile(cfg, data, 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, kubelet, append([]string{"--config", cfg}, tc.flags...)...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}} // nobody
			out, err := cmd.CombinedOutput()
			log := fmt.Sprintf("%s(exit: %v)", out, err)
			if !tc.ok {
				if !strings.Contains(log, tc.want) {
					t.Errorf("kubelet on a bad configuration: output lacks %q:\n%s", tc.want, log)
				}
				return
			}
			for _, refused := range []string{"strict decoding error", "failed to validate kubelet configuration", "failed to load kubelet config file"} {
				if strings.Contains(log, refused) {
					t.Errorf("kubelet refused %s (%q):\n%s", tc.config, refused, log)
				}
			}
			for _, want := range []string{"Effective KubeletConfiguration", tc.want} {
				if !strings.Contains(log, want) {
					t.Errorf("kubelet output lacks %q:\n%s", want, log)
				}
			}
		})
	}
}

// TestKubeletModulePinned checks packages/kubernetes-1.37 against the
// upstream module it pins, as a version bump must keep it
// (docs/kubernetes.md): go.mod requires k8s.io/kubernetes vX.Y.Z and
// replaces exactly the staging modules of upstream's own replace block
// (less the two sample modules the module proxy refuses) with v0.Y.Z;
// the spec's Version and version stamps say the same version.
func TestKubeletModulePinned(t *testing.T) {
	dir := filepath.Join(projectRoot(t), "packages", "kubernetes-1.37")
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	var version string
	replaced := map[string]string{} // module -> replacement "path version"
	for _, l := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 3 && f[0] == "require" && f[1] == "k8s.io/kubernetes":
			version = f[2]
		case len(f) == 4 && f[1] == "=>":
			replaced[f[0]] = f[2] + " " + f[3]
		}
	}
	if !strings.HasPrefix(version, "v1.37.") {
		t.Fatalf("go.mod requires k8s.io/kubernetes %q, want v1.37.x", version)
	}
	staging := "v0" + strings.TrimPrefix(version, "v1")

	// Upstream's go.mod, from the module cache (buildctl's go mod download
	// of the package put it there).
	cmd := exec.Command("go", "mod", "download", "-json", "k8s.io/kubernetes@"+version)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod download k8s.io/kubernetes@%s: %v", version, err)
	}
	var info struct{ GoMod string }
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	upstream, err := os.ReadFile(info.GoMod)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, l := range strings.Split(string(upstream), "\n") {
		f := strings.Fields(l)
		if len(f) == 3 && f[1] == "=>" && strings.HasPrefix(f[2], "./staging/") &&
			f[0] != "k8s.io/sample-cli-plugin" && f[0] != "k8s.io/sample-controller" {
			want[f[0]] = f[0] + " " + staging
		}
	}
	if len(want) == 0 {
		t.Fatalf("no staging modules in upstream's go.mod %s", info.GoMod)
	}
	for m, r := range want {
		if replaced[m] != r {
			t.Errorf("go.mod replaces %s with %q, want %q", m, replaced[m], r)
		}
	}
	for m := range replaced {
		if _, ok := want[m]; !ok {
			t.Errorf("go.mod replaces %s, which upstream's %s does not", m, version)
		}
	}

	spec, err := os.ReadFile(filepath.Join(dir, "kubernetes-1.37.spec"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"Version: " + strings.TrimPrefix(version, "v") + "\n", "$v.gitMinor=37 "} {
		if !strings.Contains(string(spec), line) {
			t.Errorf("kubernetes-1.37.spec lacks %q", line)
		}
	}
}
