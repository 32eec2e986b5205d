package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/ssh"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/gpt"
	"github.com/petrel-os/petrel/sources/ready"
	"github.com/petrel-os/petrel/sources/testkit/registrytest"
	"github.com/petrel-os/petrel/tools/qemu"
)

// The guest reaches the test's registries at these addresses (guest
// forwards to 127.0.0.1).
const (
	guestRegistry        = "10.0.2.100:5000"
	guestPrivateRegistry = "10.0.2.100:5001"
)

// pushImages builds the admin and control images with buildctl and pushes
// them to registry as petrel/NAME:e2e, and derives petrel/bootstrap:e2e
// from control: its entry point runs the container's user data as a
// script with BusyBox's shell.
func pushImages(t *testing.T, registry string) {
	t.Helper()
	for _, n := range []string{"admin", "control"} {
		buildctlOK(t, "container-image", "--name", n, "--push", registry+"/petrel/"+n+":e2e")
	}
	src, err := name.ParseReference(registry + "/petrel/control:e2e")
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(src, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config
	cfg.Entrypoint = []string{"/bin/sh", "/.petrel/bootstrap-containers/current/user-data"}
	boot, err := mutate.Config(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	dst, _ := name.ParseReference(registry + "/petrel/bootstrap:e2e")
	if err := remote.Write(dst, boot, remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// containerStatus reads GET /host-containers/status through the API.
func containerStatus(t *testing.T, sock string) map[string]api.ContainerStatus {
	t.Helper()
	out := apiclientOK(t, sock, "raw", "-u", api.PathContainerStatus)
	var st map[string]api.ContainerStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%s: %q: %v", api.PathContainerStatus, out, err)
	}
	return st
}

// waitStatus waits until container id reports state (and an error that
// contains errPart), failing on another final state.
func waitStatus(t *testing.T, sock, id string, state api.ContainerState, errPart string) api.ContainerStatus {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		st := containerStatus(t, sock)[id]
		if st.State == state && strings.Contains(st.Error, errPart) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of %s = %+v, want %s with an error containing %q", id, st, state, errPart)
		}
		time.Sleep(2 * time.Second)
	}
}

// consoleAfter returns the first console line from index from on that
// matches re.
func consoleAfter(vm *qemu.VM, from int, re string) (qemu.Line, bool) {
	rx := regexp.MustCompile(re)
	for _, l := range vm.Lines()[from:] {
		if rx.MatchString(l.Text) {
			return l, true
		}
	}
	return qemu.Line{}, false
}

// sshRun runs cmd in the admin container over SSH as root.
func sshRun(addr string, key ssh.Signer, cmd string) (string, error) {
	c, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(key)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second})
	if err != nil {
		return "", err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	return string(out), err
}

// TestHostContainers boots metal-dev three times with the admin and
// control images that buildctl built, served by Debian's docker-registry
// on this machine's loopback (the guest reaches it through a guest
// forward; a second registry wants a password the host does not have):
//
// Boot 1 (user data): a bootstrap container in mode once counts its runs
// in its persistent storage and sets the motd through the API; a
// non-essential bootstrap container with an image that does not exist
// fails without harm; the admin container runs superpowered: SSH with the
// key of its user data, the host's os-release through the host root and
// through sheltie, and through `apiclient exec admin`; the control
// container runs and answers `apiclient exec control -- apiclient get`,
// and runs again after its task is killed; under SELinux the control
// container cannot change the API socket or write a file of the host, and
// the admin container can (checkHostContainerConfinement); host containers with an
// image that does not exist and from the registry that refuses fail with
// those causes in their status; the API refuses a malformed reference and
// user data that is not base64, naming the field.
//
// Boot 2 (a reboot): the once container does not run again; the admin
// container runs from the cached image; disabling it with apiclient set
// stops it at once.
//
// Boot 3 (bank A reset to one try, not successful): an essential bootstrap
// container that fails keeps the host from ready and the bank unmarked.
func TestHostContainers(t *testing.T) {
	src, _ := builtImage(t)
	img := copyDisk(t, src, "host-containers.img")
	registry := registrytest.Start(t, "", "")
	private := registrytest.Start(t, "petrel", "s3cret")
	pushImages(t, registry)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sshAddr := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()

	adminUD := fmt.Sprintf(`{"ssh":{"authorized-keys":[%q]}}`, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key.PublicKey()))))
	counter := "d=/.petrel/bootstrap-containers/current\nn=$(cat $d/count 2>/dev/null || echo 0)\nn=$((n+1))\necho $n > $d/count\n" +
		"apiclient set motd=\"bootstrap runs: $n\"\n"
	ud := fmt.Sprintf(`[settings.container-registry]
insecure-registries = [%[1]q, %[2]q]

[settings.host-containers.admin]
enabled = true
superpowered = true
source = "%[1]s/petrel/admin:e2e"
user-data = %[3]q

[settings.host-containers.control]
enabled = true
source = "%[1]s/petrel/control:e2e"

[settings.host-containers.missing]
enabled = true
source = "%[1]s/petrel/nosuch:e2e"

[settings.host-containers.refused]
enabled = true
source = "%[2]s/petrel/admin:e2e"

[settings.bootstrap-containers.counter]
source = "%[1]s/petrel/bootstrap:e2e"
mode = "once"
user-data = %[4]q

[settings.bootstrap-containers.zz-missing]
source = "%[1]s/petrel/nosuch:e2e"
mode = "always"
`, guestRegistry, guestPrivateRegistry, b64(adminUD), b64(counter))
	drive := filepath.Join(t.TempDir(), "cidata.img")
	if err := qemu.ConfigDrive(t.Context(), []byte(ud), drive); err != nil {
		t.Fatal(err)
	}
	forwards := []qemu.GuestForward{{Guest: guestRegistry, Host: registry}, {Guest: guestPrivateRegistry, Host: private}}
	vm, readyLine, sock := bootWithAPI(t, qemu.Options{Image: img, Firmware: qemu.UEFI, ConfigDrive: drive,
		GuestForwards: forwards, HostForwards: []qemu.HostForward{{Host: sshAddr, GuestPort: 22}}})

	// Boot 1: the bootstrap containers ran before ready.
	st := containerStatus(t, sock)
	if s := st["boot.counter"]; s.State != api.ContainerSucceeded {
		t.Errorf("status of the once bootstrap container = %+v, want succeeded", s)
	}
	if s := st["boot.zz-missing"]; s.State != api.ContainerFailed || !strings.Contains(s.Error, "petrel/nosuch:e2e: not found") {
		t.Errorf("status of the bootstrap container without an image = %+v, want failed: not found", s)
	}
	if got := getJSON(t, sock, "settings.motd", "settings.bootstrap-containers.counter.mode")["settings"]; fmt.Sprint(got) !=
		"map[bootstrap-containers:map[counter:map[mode:off]] motd:bootstrap runs: 1]" {
		t.Errorf("after boot 1: %v, want the motd the bootstrap container set and its mode off", got)
	}
	if _, ok := consoleAfter(vm, 0, `host-ctr.*bootstrap container failed.*zz-missing.*not found`); !ok {
		t.Error("console lacks host-ctr's line for the failed bootstrap container zz-missing")
	}
	// The host containers, pulled after ready.
	waitStatus(t, sock, "admin", api.ContainerRunning, "")
	waitStatus(t, sock, "control", api.ContainerRunning, "")
	waitStatus(t, sock, "missing", api.ContainerFailed, "petrel/nosuch:e2e: not found")
	waitStatus(t, sock, "refused", api.ContainerFailed, "pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials")
	if l, ok := consoleAfter(vm, 0, `host-ctr.*host container running.*container=admin`); ok {
		t.Logf("figure: admin container running %.1fs after host ready (image pulled from the loopback registry)", (l.At - readyLine.At).Seconds())
	}

	// SSH into the admin container: the key from its user data; the host's
	// os-release through the host root and through sheltie.
	osr := getJSON(t, sock, "os")["os"].(map[string]any)
	wantPretty := fmt.Sprintf("PRETTY_NAME=%q", osr["pretty_name"])
	var out string
	for deadline := time.Now().Add(2 * time.Minute); ; {
		if out, err = sshRun(sshAddr, key, "cat /.petrel/rootfs/etc/os-release; sheltie cat /etc/os-release; sheltie cat /proc/1/comm"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh into the admin container: %v\n%s", err, out)
		}
		time.Sleep(3 * time.Second)
	}
	if strings.Count(out, wantPretty) != 2 || !strings.HasSuffix(strings.TrimSpace(out), "systemd") {
		t.Errorf("the host's os-release through the host root and sheltie, and PID 1's name:\n%s\nwant %s twice, then systemd", out, wantPretty)
	}
	// apiclient exec (the API's /exec route) in both host containers.
	if out := apiclientOK(t, sock, "exec", "admin", "--", "cat", "/.petrel/rootfs/etc/os-release"); !strings.Contains(out, wantPretty) {
		t.Errorf("apiclient exec admin -- cat /.petrel/rootfs/etc/os-release printed %q, want %s", out, wantPretty)
	}
	if out := apiclientOK(t, sock, "exec", "control", "--", "apiclient", "get", "settings.motd"); !strings.Contains(out, `"motd": "bootstrap runs: 1"`) {
		t.Errorf("apiclient exec control -- apiclient get settings.motd printed %q", out)
	}
	// SELinux: what the control container may not do, the admin container may.
	checkHostContainerConfinement(t, vm, sock)
	// A host container whose task dies is started again (Restart=always):
	// the superpowered admin container sees the control container's
	// processes and kills its entry point.
	before := containerStatus(t, sock)["control"]
	apiclientOK(t, sock, "exec", "admin", "--", "kill", "-9", fmt.Sprint(before.PID))
	waitStatus(t, sock, "control", api.ContainerExited, "host container control: its task exited with status 137")
	if after := waitStatus(t, sock, "control", api.ContainerRunning, ""); after.PID == before.PID {
		t.Errorf("control after its task was killed: %+v, want it running with a new PID", after)
	}
	mem, err := sshRun(sshAddr, key, `sheltie sh -c 'for p in /proc/[0-9]*; do c=$(tr "\0" " " < $p/cmdline 2>/dev/null); case "$c" in "/usr/bin/containerd --config /etc/host-containerd/"*|/usr/bin/containerd-shim-runc-v2*/run/host-containerd/*|/usr/bin/host-ctr*) echo "$(grep -E "VmRSS|RssAnon" $p/status | tr -s "\t " " " | tr "\n" " ")$c";; esac; done'`)
	t.Logf("figure: memory of the host containerd, its shims and host-ctr (VmRSS):\n%s", mem)
	if err != nil || !strings.Contains(mem, "/etc/host-containerd/config.toml") {
		t.Errorf("memory figures through sheltie: %v\n%s", err, mem)
	}

	// Bad input through the API: refused with the field named, the rest
	// of the host unaffected.
	for _, tc := range []struct{ set, want string }{
		{"host-containers.admin.source=Not A Reference", `settings.host-containers.admin.source: expected a container image reference like registry/name:tag or oci-archive:/path, got "Not A Reference"`},
		{"bootstrap-containers.counter.user-data=not base64!", "settings.bootstrap-containers.counter.user-data: expected base64"},
		{"bootstrap-containers.counter.mode=twice", `settings.bootstrap-containers.counter.mode: expected one of off, once, always, got "twice"`},
	} {
		_, errb, code := runAPIClient(t, sock, "set", tc.set)
		if code != 1 || !strings.Contains(errb, "status 400") || !strings.Contains(errb, tc.want) {
			t.Errorf("apiclient set %s: exit %d, %q; want 1 and a 400 with %q", tc.set, code, errb, tc.want)
		}
	}
	if s := containerStatus(t, sock)["control"]; s.State != api.ContainerRunning {
		t.Errorf("control after the refused settings = %+v", s)
	}
	// The failing host containers are turned off for the next boots.
	apiclientOK(t, sock, "set", "host-containers.missing.enabled=false", "host-containers.refused.enabled=false")

	// Boot 2.
	from := vm.Len()
	apiclientOK(t, sock, "reboot")
	readyLine, _, err = vm.WaitReady(t.Context(), from, bootTimeout, qemu.Policy{})
	if err != nil {
		t.Fatalf("boot 2: %v", err)
	}
	if s := containerStatus(t, sock)["boot.counter"]; s.State != api.ContainerOff {
		t.Errorf("boot 2: status of the once bootstrap container = %+v, want off", s)
	}
	if got := getJSON(t, sock, "settings.motd")["settings"]; fmt.Sprint(got) != "map[motd:bootstrap runs: 1]" {
		t.Errorf("boot 2: %v: the once bootstrap container ran again", got)
	}
	waitStatus(t, sock, "admin", api.ContainerRunning, "")
	if l, ok := consoleAfter(vm, from, `host-ctr.*host container running.*container=admin`); ok {
		t.Logf("figure: admin container running %.1fs after host ready (image cached)", (l.At - readyLine.At).Seconds())
	}
	// Disabled at runtime: stopped at once, SSH gone.
	apiclientOK(t, sock, "set", "host-containers.admin.enabled=false")
	if s := containerStatus(t, sock)["admin"]; s.State != api.ContainerDisabled {
		t.Errorf("admin after enabled=false = %+v, want disabled", s)
	}
	if out, err := sshRun(sshAddr, key, "true"); err == nil {
		t.Errorf("ssh into the disabled admin container worked: %s", out)
	}
	// Boot 3 will run an essential bootstrap container that fails.
	apiclientOK(t, sock, "set", "bootstrap-containers.essential.source="+guestRegistry+"/petrel/bootstrap:e2e",
		"bootstrap-containers.essential.mode=always", "bootstrap-containers.essential.essential=true",
		"bootstrap-containers.essential.user-data="+b64("echo failing on purpose; exit 3\n"))
	vm.Stop()

	// Boot 3: bank A with one try left and no success mark.
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	table, err := gpt.ReadOpen(t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	esp, _ := table.ByName("EFI-SYSTEM")
	espOff, _ := table.Bytes(esp)
	envOff, err := bootstate.LocateEnv(t.Context(), f, espOff)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := bootstate.Update(t.Context(), f, envOff, func(s bootstate.State) (bootstate.State, error) {
		s.A.TriesLeft, s.A.Successful = 1, false
		return s, nil
	}); err != nil {
		t.Fatal(err)
	}
	vm3, err := qemu.Start(t.Context(), qemu.Options{Image: img, Firmware: qemu.UEFI, GuestForwards: forwards,
		ConsoleLog: strings.TrimSuffix(consoleLog(t), ".log") + "-boot3.log"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm3.Stop)
	_, _, err = vm3.WaitReady(t.Context(), 0, bootTimeout, qemu.Policy{})
	var be *qemu.BootError
	if !errors.As(err, &be) || !strings.Contains(be.Reason, "mark-successful-boot.service cannot start: a unit it requires failed") {
		t.Fatalf("boot 3 with an essential bootstrap container that fails: %v, want mark-successful-boot not started", err)
	}
	if _, ok := consoleAfter(vm3, 0, `host-ctr.*essential bootstrap container failed; the boot will not be marked successful.*container=essential.*exited with status 3`); !ok {
		t.Error("boot 3: console lacks host-ctr's line for the essential bootstrap container")
	}
	if _, ok := consoleAfter(vm3, 0, regexp.QuoteMeta(ready.Marker)); ok {
		t.Error("boot 3: the host reported ready")
	}
	vm3.Stop()
	s, _, err := bootstate.Read(t.Context(), f, envOff)
	if err != nil {
		t.Fatal(err)
	}
	if s.A.Successful || s.A.TriesLeft != 0 {
		t.Errorf("bank A after boot 3 = %+v, want its try spent and not successful", s.A)
	}
}
