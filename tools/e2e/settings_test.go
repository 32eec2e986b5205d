package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/apiclient"
	"github.com/petrel-os/petrel/sources/ready"
	"github.com/petrel-os/petrel/sources/selinux"
	"github.com/petrel-os/petrel/tools/buildctl"
	"github.com/petrel-os/petrel/tools/qemu"
)

// lockdownLine is what the kernel prints when the lockdown level is raised
// through securityfs (security/lockdown/lockdown.c).
const lockdownLine = "Kernel is locked down from securityfs; see man kernel_lockdown.7"

// TestKernelLockdown: the default settings.kernel.lockdown, integrity,
// takes effect at boot: settings-applier raises it and the kernel says so.
func TestKernelLockdown(t *testing.T) {
	img, _ := builtImage(t)
	vm, _ := bootUntilReady(t, qemu.Options{Image: img, Snapshot: true, Firmware: qemu.UEFI})
	from := 0
	for _, re := range []string{regexp.QuoteMeta(lockdownLine), `settings-applier\[\d+\]: petrel: kernel lockdown integrity`} {
		_, n, err := vm.WaitFor(t.Context(), regexp.MustCompile(re), from, time.Second)
		if err != nil {
			t.Fatalf("console lacks %q after line %d: %v", re, from, err)
		}
		from = n
	}
}

// liveHost is a VM booted with `buildctl boot --keep-running --api-socket`,
// which bridges the guest's API socket to one on this machine.
type liveHost struct {
	t       *testing.T
	socket  string
	console string // the console log file
}

// bootLive boots the default variant's latest image with user data and
// the API bridge, and waits until the host is ready and the socket is
// there. The VM stops when the test ends.
func bootLive(t *testing.T, userData string) *liveHost {
	builtImage(t)
	dir, err := os.MkdirTemp("", "live") // short: it holds a Unix socket
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	h := &liveHost{t: t, socket: filepath.Join(dir, "api.sock"), console: filepath.Join(dir, "console.log")}
	ud := filepath.Join(dir, "user-data.toml")
	if err := os.WriteFile(ud, []byte(userData), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var out bytes.Buffer
	go func() {
		done <- buildctl.Main(ctx, []string{"-C", projectRoot(t), "--variant", variant, "boot", "--quiet", "--keep-running",
			"--api-socket", h.socket, "--console-log", h.console, "--user-data", ud}, &out, &out)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	deadline := time.Now().Add(bootTimeout)
	for {
		select {
		case code := <-done:
			done <- code
			t.Fatalf("buildctl boot --api-socket exited %d before the host was ready:\n%s", code, out.String())
		case <-time.After(time.Second):
		}
		if _, err := os.Stat(h.socket); err == nil && strings.Contains(h.read(), ready.Marker) {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("host not ready with an API socket within %v:\n%s", bootTimeout, out.String())
		}
	}
}

func (h *liveHost) read() string {
	data, _ := os.ReadFile(h.console)
	return string(data)
}

// waitConsole waits for a console line matching re after byte offset from.
func (h *liveHost) waitConsole(re string, from int, timeout time.Duration) error {
	rx := regexp.MustCompile(re)
	for deadline := time.Now().Add(timeout); ; {
		if c := h.read(); len(c) > from && rx.MatchString(c[from:]) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("not within " + timeout.String())
		}
		time.Sleep(time.Second)
	}
}

// apiclient runs the normal apiclient against the bridged socket.
func (h *liveHost) apiclient(args ...string) (int, string) {
	var out bytes.Buffer
	code := apiclient.Run(h.t.Context(), append([]string{"--socket-path", h.socket}, args...), strings.NewReader(""), &out, &out)
	return code, out.String()
}

// TestSettingsLive sets motd and network.hostname on a running VM through
// the API bridge with the normal apiclient: the settings applier rewrites
// /etc/motd and /etc/hostname and sets the host name at once, without a
// reboot (its lines show on the console, the host name as the kernel
// reports it back); a bad host name is refused with a 400 naming the field.
func TestSettingsLive(t *testing.T) {
	h := bootLive(t, "[settings]\nmotd = \"hello from user data\"\n[settings.network]\nhostname = \"petrel-test\"\n")
	from := len(h.read())
	if code, out := h.apiclient("set", "motd=set live", "network.hostname=live-host"); code != 0 {
		t.Fatalf("apiclient set = exit %d: %s", code, out)
	}
	for _, re := range []string{
		`apiserver\[\d+\]: .*msg="wrote configuration file" component=settings-applier path=/etc/hostname`,
		`apiserver\[\d+\]: .*msg="wrote configuration file" component=settings-applier path=/etc/motd`,
		`apiserver\[\d+\]: petrel: hostname live-host`,
	} {
		if err := h.waitConsole(re, from, time.Minute); err != nil {
			t.Errorf("after apiclient set: console lacks %q: %v", re, err)
		}
	}
	code, out := h.apiclient("get", "settings.motd", "settings.network")
	if code != 0 || !strings.Contains(out, `"motd": "set live"`) || !strings.Contains(out, `"hostname": "live-host"`) {
		t.Errorf("apiclient get = exit %d %q; want the new motd and host name", code, out)
	}

	code, out = h.apiclient("set", "network.hostname=a b;rm -rf")
	want := `status 400: Unable to match your input to the data model: settings.network.hostname: expected an RFC 1123 host name, got "a b;rm -rf"`
	if code != 1 || !strings.Contains(out, want) {
		t.Errorf("apiclient set of a bad host name = exit %d %q; want exit 1 and %q", code, out, want)
	}
	if code, out := h.apiclient("get", "settings.network.hostname"); code != 0 || !strings.Contains(out, `"hostname": "live-host"`) {
		t.Errorf("after the refused host name: apiclient get = exit %d %q; want live-host kept", code, out)
	}
}

// TestKernelSettings: settings.kernel.sysctl and settings.kernel.modules
// take effect at boot and on a live change. User data sets a sysctl, one
// the kernel lacks, one with a value the kernel refuses, a module to
// autoload and one that is not allowed; at boot settings-applier writes the
// sysctl and prints what the kernel then holds (read back from /proc/sys),
// warns about the missing key and the refused value and still applies the
// rest, and loads the module (printed once sysfs lists it).
// Through the API bridge, another sysctl and another module are applied at
// once. Nothing of it is denied by SELinux.
func TestKernelSettings(t *testing.T) {
	h := bootLive(t, `[settings.kernel.sysctl]
"vm.max_map_count" = "262144"
"petrel.no_such_key" = "1"
"kernel.pid_max" = "lots"
[settings.kernel.modules.tun]
autoload = true
[settings.kernel.modules.sctp]
allowed = false
autoload = true
`)
	for _, re := range []string{
		`settings-applier\[\d+\]: .*level=WARN msg="cannot set sysctl; the others are still applied" component=settings-applier key=petrel.no_such_key error=".*petrel/no_such_key: no such file or directory"`,
		`settings-applier\[\d+\]: .*level=WARN msg="cannot set sysctl; the others are still applied" component=settings-applier key=kernel.pid_max error="set sysctl kernel.pid_max to \\"lots\\": write /proc/sys/kernel/pid_max: invalid argument"`,
		`settings-applier\[\d+\]: petrel: sysctl vm.max_map_count = 262144\r?\n`,
		`settings-applier\[\d+\]: petrel: kernel module tun loaded`,
	} {
		if err := h.waitConsole(re, 0, time.Minute); err != nil {
			t.Errorf("at boot: console lacks %q: %v", re, err)
		}
	}
	if t.Failed() {
		for _, l := range strings.Split(h.read(), "\n") {
			if strings.Contains(l, "settings-applier[") {
				t.Logf("console: %s", l)
			}
		}
	}
	if strings.Contains(h.read(), "kernel module sctp") {
		t.Errorf("sctp, not allowed, was loaded at boot")
	}

	from := len(h.read())
	if code, out := h.apiclient("set", "--json", `{"kernel": {"sysctl": {"vm.swappiness": "17"}, "modules": {"macvlan": {"autoload": true}}}}`); code != 0 {
		t.Fatalf("apiclient set = exit %d: %s", code, out)
	}
	for _, re := range []string{
		`apiserver\[\d+\]: .*msg="wrote configuration file" component=settings-applier path=/etc/modules-load.d/50-petrel-settings.conf`,
		`apiserver\[\d+\]: petrel: sysctl vm.swappiness = 17\r?\n`,
		`apiserver\[\d+\]: petrel: kernel module macvlan loaded`,
	} {
		if err := h.waitConsole(re, from, time.Minute); err != nil {
			t.Errorf("after apiclient set: console lacks %q: %v", re, err)
		}
	}
	console := h.read()
	for _, d := range selinux.Denials(console) {
		t.Errorf("AVC denial on the console: %s", d)
	}
	if !strings.Contains(console, "petrel: selinux enforcing") {
		t.Errorf("the host did not say it runs SELinux enforcing: the denial check proves nothing")
	}
}
