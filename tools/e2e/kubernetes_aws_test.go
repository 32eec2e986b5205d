package e2e

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/ready"
	"github.com/petrel-os/petrel/tools/qemu"
)

// awsK8sVariant is the EC2 Kubernetes variant (split partition plan).
const awsK8sVariant = "aws-k8s-1.37"

// imdsToken is the session token the test's IMDS hands out.
const imdsToken = "test-token"

// serveIMDS serves IMDSv2 on this machine's loopback, for a guest forward
// of 169.254.169.254:80: a token from PUT /latest/api/token (with a TTL
// header), then user data and the metadata items (below
// /latest/meta-data/) to requests carrying it; anything else is 404. It
// returns the server's address and a function listing the requests seen
// ("PUT /latest/api/token", "GET /latest/meta-data/instance-id", ...; a
// GET without the token is marked "(no token)").
func serveIMDS(t *testing.T, userData string, items map[string]string) (string, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var requests []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokenOK := r.Header.Get("X-aws-ec2-metadata-token") == imdsToken
		mu.Lock()
		req := r.Method + " " + r.URL.Path
		if r.Method == http.MethodGet && !tokenOK {
			req += " (no token)"
		}
		requests = append(requests, req)
		mu.Unlock()
		item, isItem := strings.CutPrefix(r.URL.Path, "/latest/meta-data/")
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token" && r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds") != "":
			fmt.Fprint(w, imdsToken)
		case r.Method == http.MethodGet && !tokenOK:
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		case r.Method == http.MethodGet && r.URL.Path == "/latest/user-data":
			fmt.Fprint(w, userData)
		case r.Method == http.MethodGet && isItem && items[item] != "":
			fmt.Fprint(w, items[item])
		default:
			http.NotFound(w, r)
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), requests...)
	}
}

// TestKubernetesAWS boots aws-k8s-1.37 with both disks of the split plan
// as an EC2 instance (SMBIOS vendor "Amazon EC2", IMDSv2 through a guest
// forward of 169.254.169.254:80) whose user data sets standalone mode and
// a cluster name and nothing else of the node. pluto must fill node-ip,
// provider-id, hostname-override, max-pods and cluster-dns-ip from the
// instance metadata before settings-applier renders kubelet's
// configuration, and kubelet must start with it.
func TestKubernetesAWS(t *testing.T) {
	img, data := builtSplitVariant(t, awsK8sVariant)
	const ud = "[settings.kubernetes]\nstandalone-mode = true\ncluster-name = \"petrel-e2e\"\n"
	items := map[string]string{
		// The guest's own address: QEMU's DHCP gives .15 of the network.
		"local-ipv4":                  "169.254.169.15",
		"instance-id":                 "i-0e2e0123456789abc",
		"placement/availability-zone": "us-west-2a",
		"local-hostname":              "ip-169-254-169-15.us-west-2.compute.internal",
		"instance-type":               "t3.large",
	}
	imds, requests := serveIMDS(t, ud, items)
	start := time.Now()
	vm, _, sock := bootWithAPI(t, qemu.Options{Image: img, DataImage: data, Snapshot: true, Firmware: qemu.UEFI, MemoryMiB: 2048,
		Network: qemu.EC2Network, SystemVendor: "Amazon EC2",
		GuestForwards: []qemu.GuestForward{{Guest: "169.254.169.254:80", Host: imds}}})

	want := map[string]any{
		"node-ip":           "169.254.169.15",
		"provider-id":       "aws:///us-west-2a/i-0e2e0123456789abc",
		"hostname-override": "ip-169-254-169-15.us-west-2.compute.internal",
		"max-pods":          float64(35), // t3.large: 3 ENIs × (12 − 1) + 2
		"cluster-dns-ip":    "10.100.0.10",
		// From user data, through IMDS too.
		"standalone-mode": true,
		"cluster-name":    "petrel-e2e",
	}
	settings, _ := getJSON(t, sock, "settings.kubernetes")["settings"].(map[string]any)
	k8s, _ := settings["kubernetes"].(map[string]any)
	for k, v := range want {
		if !reflect.DeepEqual(k8s[k], v) {
			t.Errorf("settings.kubernetes.%s = %#v through the API, want %#v", k, k8s[k], v)
		}
	}

	// pluto's console lines, and its place in the boot: after sundog,
	// before the first rendering.
	console := consoleText(vm)
	for _, line := range []string{
		"settings.kubernetes.provider-id = aws:///us-west-2a/i-0e2e0123456789abc (IMDS placement/availability-zone and instance-id)",
		"settings.kubernetes.max-pods = 35 (ENI table: instance type t3.large)",
		"generated 5 Kubernetes settings, 0 already set",
	} {
		if !strings.Contains(console, line) {
			t.Errorf("console lacks pluto's line %q", line)
		}
	}
	order := []string{"Finished sundog.service", "Finished pluto.service", "Starting settings-applier.service"}
	last := -1
	for _, s := range order {
		i := strings.Index(console, s)
		if i < 0 || i < last {
			t.Errorf("console: %q missing or out of the order %q", s, order)
		}
		last = i
	}

	// kubelet started (Type=notify: systemd says Started once kubelet
	// reported ready) with the rendered configuration.
	line, _, err := vm.WaitFor(t.Context(), regexp.MustCompile(`Started kubelet\.service`), 0, 5*time.Minute)
	if err != nil {
		t.Fatalf("kubelet did not start: %v", err)
	}
	t.Logf("kubelet started %.0fs after the VM started (console %.1fs): %s", time.Since(start).Seconds(), line.At.Seconds(), line.Text)
	if failed := regexp.MustCompile(`(?m)^.*(Failed to start|FAILED).*(pluto|kubelet).*$`).FindString(consoleText(vm)); failed != "" {
		t.Errorf("console: %s", failed)
	}

	// Every read carried the session token; pluto read each item it needs.
	got := requests()
	if !slices.Contains(got, "PUT /latest/api/token") || slices.ContainsFunc(got, func(r string) bool { return strings.HasSuffix(r, "(no token)") }) {
		t.Errorf("IMDS requests without a token, or no token request: %q", got)
	}
	for item := range items {
		if !slices.Contains(got, "GET /latest/meta-data/"+item) {
			t.Errorf("IMDS was not asked for %s: %q", item, got)
		}
	}
}

// TestKubernetesAWSNoMetadata boots aws-k8s-1.37 with an IMDS that lacks
// the instance's availability zone: pluto fails naming the setting and
// the item, the settings are not applied (settings-applier requires
// pluto, as upstream's), and the boot is not marked successful, so a new
// image that cannot configure its node falls back.
func TestKubernetesAWSNoMetadata(t *testing.T) {
	img, data := builtSplitVariant(t, awsK8sVariant)
	imds, _ := serveIMDS(t, "[settings.kubernetes]\nstandalone-mode = true\n", map[string]string{
		"local-ipv4":     "169.254.169.15",
		"instance-id":    "i-0e2e0123456789abc",
		"local-hostname": "ip-169-254-169-15.us-west-2.compute.internal",
		"instance-type":  "t3.large",
	})
	vm, err := qemu.Start(t.Context(), qemu.Options{Image: img, DataImage: data, Snapshot: true, Firmware: qemu.UEFI, MemoryMiB: 2048,
		Network: qemu.EC2Network, SystemVendor: "Amazon EC2", ConsoleLog: consoleLog(t),
		GuestForwards: []qemu.GuestForward{{Guest: "169.254.169.254:80", Host: imds}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Stop)
	_, _, err = vm.WaitReady(t.Context(), 0, bootTimeout, qemu.Policy{})
	var be *qemu.BootError
	if !errors.As(err, &be) || !strings.Contains(be.Reason, "mark-successful-boot.service cannot start: a unit it requires failed") {
		t.Fatalf("boot with an IMDS without placement/availability-zone: %v, want mark-successful-boot not started", err)
	}
	if _, ok := consoleAfter(vm, 0, `pluto.*settings\.kubernetes\.provider-id.*placement/availability-zone`); !ok {
		t.Error("console lacks pluto's error naming settings.kubernetes.provider-id and placement/availability-zone")
	}
	if _, ok := consoleAfter(vm, 0, `Dependency failed for settings-appl.*configuration files from settings`); !ok {
		t.Error("console lacks systemd's line that settings-applier.service did not start for pluto's failure")
	}
	if _, ok := consoleAfter(vm, 0, regexp.QuoteMeta(ready.Marker)); ok {
		t.Error("the host reported ready")
	}
}
