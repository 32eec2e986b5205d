package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/tools/qemu"
)

// bootWithAPI boots opts with the guest's API socket served on this machine
// (qemu.Options.APISocket) and reboots allowed, waits for host ready (or a
// console line that shows it cannot come) and returns the VM, the ready
// line and the socket path for apiclient --socket-path.
func bootWithAPI(t *testing.T, opts qemu.Options) (*qemu.VM, qemu.Line, string) {
	t.Helper()
	dir := t.TempDir()
	opts.APISocket = filepath.Join(dir, "api.sock")
	opts.Reboot = true
	if opts.ConsoleLog == "" {
		opts.ConsoleLog = consoleLog(t)
	}
	vm, err := qemu.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Stop)
	line, _, err := vm.WaitReady(t.Context(), 0, bootTimeout, qemu.Policy{})
	if err != nil {
		t.Fatalf("boot %s (%s): %v", filepath.Base(opts.Image), opts.Firmware, err)
	}
	t.Logf("%s: host ready after %.1fs: %s", opts.Firmware, line.At.Seconds(), line.Text)
	return vm, line, opts.APISocket
}

// apiclientOK runs the normal apiclient command line against socket and
// returns its standard output; a non-zero exit fails the test.
func apiclientOK(t *testing.T, socket string, args ...string) string {
	t.Helper()
	out, errb, code := runAPIClient(t, socket, args...)
	if code != 0 {
		t.Fatalf("apiclient %s exited %d: %s", strings.Join(args, " "), code, errb)
	}
	return out
}

func runAPIClient(t *testing.T, socket string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := apiclient.Run(t.Context(), append([]string{"--socket-path", socket}, args...), strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// getJSON runs apiclient get and decodes its JSON.
func getJSON(t *testing.T, socket string, args ...string) map[string]any {
	t.Helper()
	var v map[string]any
	out := apiclientOK(t, socket, append([]string{"get"}, args...)...)
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("apiclient get %v printed %q: %v", args, out, err)
	}
	return v
}

// TestBridgeAPI drives a running VM through the API bridge with the normal
// apiclient: reads, concurrent reads, a set (PATCH and commit), apply of a
// user-data file from this machine, and a reboot after which the next
// boot's API answers on the same socket with the settings kept.
func TestBridgeAPI(t *testing.T) {
	img, _ := builtImage(t)
	vm, _, sock := bootWithAPI(t, qemu.Options{Image: img, Snapshot: true, Firmware: qemu.UEFI})
	// The agent may say hello after host ready (docs/vm.md).
	session := vm.WaitAPISession(t.Context(), time.Minute)
	if session == 0 {
		t.Fatal("a minute after host ready, the bridge has no guest session")
	}

	osInfo, _ := getJSON(t, sock, "os")["os"].(map[string]any)
	if osInfo["variant_id"] != variant || osInfo["arch"] != "x86_64" {
		t.Errorf("apiclient get os = %v, want variant %s on x86_64", osInfo, variant)
	}
	settings, _ := getJSON(t, sock, "settings")["settings"].(map[string]any)
	if _, ok := settings["motd"]; !ok {
		t.Errorf("apiclient get settings = %v, want a motd", settings)
	}

	// Many clients at once, each on its own stream.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			out, errb, code := runAPIClient(t, sock, "get", "os")
			if code != 0 || !strings.Contains(out, `"variant_id": "`+variant+`"`) {
				errs <- fmt.Errorf("concurrent get %d: exit %d, %q, %s", i, code, out, errb)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	apiclientOK(t, sock, "set", "motd=set through the bridge")
	if got := getJSON(t, sock, "settings.motd")["settings"]; fmt.Sprint(got) != "map[motd:set through the bridge]" {
		t.Errorf("motd after set = %v", got)
	}
	ud := filepath.Join(t.TempDir(), "user-data.toml")
	if err := os.WriteFile(ud, []byte("[settings]\nmotd = \"applied through the bridge\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	apiclientOK(t, sock, "apply", ud)
	if got := getJSON(t, sock, "settings.motd")["settings"]; fmt.Sprint(got) != "map[motd:applied through the bridge]" {
		t.Errorf("motd after apply = %v", got)
	}

	// A raw request with an HTTP client of this machine's own.
	c := &http.Client{Transport: &http.Transport{Dial: func(_, _ string) (net.Conn, error) { return net.Dial("unix", sock) }}}
	resp, err := c.Get("http://localhost/os")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /os through the bridge: %s", resp.Status)
	}

	from := vm.Len()
	apiclientOK(t, sock, "reboot")
	if _, _, err := vm.WaitFor(t.Context(), regexp.MustCompile(`^petrel: A prio=`), from, bootTimeout); err != nil {
		t.Fatalf("no boot after the reboot request: %v", err)
	}
	// The guest is booting again: a client now waits for it instead of
	// failing.
	after := getJSON(t, sock, "settings.motd")["settings"]
	line, _, err := vm.WaitReady(t.Context(), from, bootTimeout, qemu.Policy{})
	if err != nil {
		t.Fatalf("boot after the reboot: %v", err)
	}
	t.Logf("host ready again after %.1fs: %s", line.At.Seconds(), line.Text)
	if fmt.Sprint(after) != "map[motd:applied through the bridge]" {
		t.Errorf("motd after the reboot = %v, want the value set before it", after)
	}
	if n := len(regexp.MustCompile(`(?m)^petrel: A prio=`).FindAllString(consoleSince(vm, from), -1)); n != 1 {
		t.Errorf("GRUB chose a bank %d times after the reboot request, want once", n)
	}
	if s := vm.APISession(); s == session || s == 0 {
		t.Errorf("bridge session after the reboot = %08x, want a new one (was %08x)", s, session)
	}
	if osInfo, _ := getJSON(t, sock, "os")["os"].(map[string]any); osInfo["variant_id"] != variant {
		t.Errorf("apiclient get os after the reboot = %v", osInfo)
	}
}

// consoleSince returns the console from line index from on.
func consoleSince(vm *qemu.VM, from int) string {
	var b strings.Builder
	for _, l := range vm.Lines()[from:] {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}

// TestBridgeGuestForward boots the image as an EC2 instance would see
// itself (SMBIOS vendor "Amazon EC2", the metadata address in its network)
// with the guest's network restricted: the only way out is a guest forward
// of 169.254.169.254:80 to an IMDSv2 server this test runs on 127.0.0.1.
// The host's early-boot-config must fetch its user data from it through
// the forward.
func TestBridgeGuestForward(t *testing.T) {
	img, _ := builtImage(t)
	const motd = "from IMDS through a guest forward"
	imds, requests := serveIMDS(t, fmt.Sprintf("[settings]\nmotd = %q\n", motd), nil)
	vm, _, sock := bootWithAPI(t, qemu.Options{Image: img, Snapshot: true, Firmware: qemu.UEFI,
		Network: qemu.EC2Network, SystemVendor: "Amazon EC2",
		GuestForwards: []qemu.GuestForward{{Guest: "169.254.169.254:80", Host: imds}}})
	if !strings.Contains(consoleText(vm), "petrel: motd: "+motd) {
		t.Errorf("console lacks the motd from the IMDS user data %q", motd)
	}
	if got := requests(); !slices.Contains(got, "PUT /latest/api/token") || !slices.Contains(got, "GET /latest/user-data") {
		t.Errorf("the test IMDS server saw %q, want a token PUT and a user-data GET with the token", got)
	}
	if m := getJSON(t, sock, "settings.motd")["settings"]; fmt.Sprint(m) != "map[motd:"+motd+"]" {
		t.Errorf("motd through the API = %v", m)
	}
}
