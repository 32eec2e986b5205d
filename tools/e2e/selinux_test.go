package e2e

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/ready"
	"github.com/petrel-os/petrel/sources/selinux"
	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/qemu"
)

// TestSELinuxEnforcing boots a copy of the default variant's image and
// checks that it runs enforcing with Petrel's policy, loaded by the
// initramfs and again by systemd, and that nothing is denied through host
// ready, a settings change the API applies at once (the applier renders
// /etc and runs the host name's restart command), and a reboot through
// the API (systemd checks the API server's right to start reboot.target)
// up to the next boot's ready line: not on the console (the kernel prints
// every AVC line there, as no audit daemon runs; systemd's go through the
// kernel's audit) and not in the first boot's journal, read from DATA
// afterwards. TestDenials in sources/selinux holds the detection to real
// lines of both kinds.
func TestSELinuxEnforcing(t *testing.T) {
	src, _ := builtImage(t)
	img := copyDisk(t, src, "selinux.img")
	vm, _, sock := bootWithAPI(t, qemu.Options{Image: img, Firmware: qemu.UEFI})
	console := func() string {
		var b strings.Builder
		for _, l := range vm.Lines() {
			b.WriteString(l.Text + "\n")
		}
		return b.String()
	}
	boot := console()
	for _, want := range []string{
		"security=selinux enforcing=1",
		"petrel-init: loaded SELinux policy petrel (/usr/share/factory/etc/selinux/petrel/policy/policy.33), enforcing",
		"systemd[1]: Successfully loaded SELinux policy",
		// The shipped preload list (packages/host/preload), read by a
		// child of /init that runs on under systemd's policy.
		"petrel-init: reading ahead 2 files",
		"petrel-init: read ahead 2 files",
		// petrel-ready runs as a system agent; the type exists only in Petrel's policy.
		"petrel: selinux enforcing, policy petrel, context system_u:system_r:system_t:s0-s0:c0.c1023",
	} {
		if !strings.Contains(boot, want) {
			t.Errorf("console lacks %q", want)
		}
	}

	from := vm.Len()
	apiclientOK(t, sock, "set", "motd=set under SELinux", "network.hostname=selinux-host")
	for _, re := range []string{
		`apiserver\[\d+\]: .*msg="wrote configuration file" component=settings-applier path=/etc/motd`,
		`apiserver\[\d+\]: petrel: hostname selinux-host`,
	} {
		if _, _, err := vm.WaitFor(t.Context(), regexp.MustCompile(re), from, time.Minute); err != nil {
			t.Errorf("after apiclient set: %v", err)
		}
	}
	from = vm.Len()
	apiclientOK(t, sock, "reboot")
	line, _, err := vm.WaitReady(t.Context(), from, bootTimeout, qemu.Policy{})
	if err != nil {
		t.Fatalf("second boot: %v", err)
	}
	t.Logf("host ready again: %s", line.Text)
	vm.Stop()

	log := console()
	for _, d := range selinux.Denials(log) {
		t.Errorf("AVC denial on the console: %s", d)
	}
	for _, u := range selinux.Undefined(log) {
		t.Errorf("the policy lacks what the kernel knows: %s", u)
	}
	for _, bad := range []string{"Failed to load new SELinux policy", "Unknown class", "Unknown permission", "SELinux policy denies access"} {
		if strings.Contains(log, bad) {
			t.Errorf("console has %q", bad)
		}
	}

	journal := readJournal(t, img)
	if n := strings.Count(journal, ready.Marker); n < 1 {
		t.Fatalf("the journal on DATA has no %q line: it was not read\n%s", ready.Marker, journal)
	}
	// The policy load's audit record: kernel audit lines, where AVC lines
	// would be, are in what was read.
	for _, want := range []string{"lsm=selinux res=1", "petrel: selinux enforcing, policy petrel", "petrel: hostname selinux-host"} {
		if !strings.Contains(journal, want) {
			t.Errorf("journal lacks %q", want)
		}
	}
	for _, d := range selinux.Denials(journal) {
		t.Errorf("AVC denial in the journal: %s", d)
	}
}

// readJournal copies /var/log/journal out of the DATA partition of img
// with debugfs and returns what journalctl prints of it.
func readJournal(t *testing.T, img string) string {
	t.Helper()
	data := hostPartitions(t, img)["/local"]
	part := extract(t, img, data.offset, data.size)
	dir := t.TempDir()
	testkit.Run(t, "debugfs", "-R", "rdump /var/log/journal "+dir, part)
	return testkit.Run(t, "journalctl", "--directory", filepath.Join(dir, "journal"), "--no-pager", "-o", "short-monotonic")
}

// confinementOp is an operation of checkHostContainerConfinement: its
// shell commands in the admin and the control container, and the AVC line
// the control container's causes.
type confinementOp struct {
	name, admin, control, avc string
}

// checkHostContainerConfinement shows in TestHostContainers' first boot
// what the policy keeps from a host container that is not superpowered
// (control_t) and lets the superpowered admin container (super_t) do, by
// the same operations through `apiclient exec` into each: changing the
// API socket (its mode: a setattr; a plain write is what connecting is,
// and a removal fails on the bind mount before SELinux is asked) and
// writing a file of the host. The control container has no host root, so
// the admin container hard-links a file it makes on DATA (local_t, like
// the rest of /local) into the control container's storage: what a
// mount namespace hides, SELinux still refuses by the file's label. The
// denials are AVC lines in the kernel's log (the console, and dmesg read
// through the admin container); the admin container's operations cause
// none; the control container still talks to the API.
func checkHostContainerConfinement(t *testing.T, vm *qemu.VM, sock string) {
	t.Helper()
	const (
		hostFile = "/.petrel/rootfs/local/petrel-e2e-host-file"
		linked   = "/.petrel/rootfs/local/host-containers/control/host-file"
		seen     = "/.petrel/host-containers/current/host-file" // the link, in the control container
		control  = `scontext=system_u:system_r:control_t:s0-s0:c0\.c1023 `
	)
	execIn := func(container, script string) (string, int) {
		out, errb, code := runAPIClient(t, sock, "exec", container, "--", "sh", "-c", script)
		return out + errb, code
	}
	for c, want := range map[string]string{"admin": "system_u:system_r:super_t:s0-s0:c0.c1023", "control": "system_u:system_r:control_t:s0-s0:c0.c1023"} {
		if out, code := execIn(c, "cat /proc/self/attr/current"); code != 0 || strings.TrimRight(out, "\x00\n") != want {
			t.Errorf("the process label in the %s container: exit %d, %q; want %s", c, code, out, want)
		}
	}
	from := vm.Len()
	if out, code := execIn("admin", "echo host > "+hostFile+" && ln -f "+hostFile+" "+linked); code != 0 {
		t.Fatalf("admin container: make a host file and link it into the control container's storage: exit %d: %s", code, out)
	}
	ops := []confinementOp{
		{"change the API socket's mode", "chmod 0660 /run/api.sock", "chmod 0660 /run/api.sock",
			`avc:\s+denied\s+\{ setattr \} for\s+pid=\d+ .*name="api\.sock" .*` + control +
				`tcontext=system_u:object_r:api_socket_t:s0 tclass=sock_file permissive=0`},
		{"write a file of the host", "echo admin > " + hostFile, "echo control > " + seen,
			`avc:\s+denied\s+\{ write \} for\s+pid=\d+ .*name="host-file" .*` + control +
				`tcontext=system_u:object_r:local_t:s0 tclass=file permissive=0`},
	}
	for _, op := range ops {
		if out, code := execIn("admin", op.admin); code != 0 {
			t.Errorf("admin container: %s (%s): exit %d, %q; want success", op.name, op.admin, code, out)
		}
	}
	for _, op := range ops {
		if out, code := execIn("control", op.control); code == 0 || !strings.Contains(out, "Permission denied") {
			t.Errorf("control container: %s (%s): exit %d, %q; want Permission denied", op.name, op.control, code, out)
		}
	}
	last := from
	for _, op := range ops {
		_, i, err := vm.WaitFor(t.Context(), regexp.MustCompile(op.avc), from, time.Minute)
		if err != nil {
			t.Errorf("control container: %s: no AVC denial on the console: %v", op.name, err)
			continue
		}
		last = max(last, i)
	}
	// The admin container's operations came first: a denial of theirs
	// would be on the console before the control container's. Only the
	// control container's expected denials are there.
	for _, l := range vm.Lines()[from : last+1] {
		for _, d := range selinux.Denials(l.Text) {
			if !slices.ContainsFunc(ops, func(op confinementOp) bool { return regexp.MustCompile(op.avc).MatchString(d) }) {
				t.Errorf("AVC denial other than the control container's expected ones: %s", d)
			}
		}
	}
	// The kernel's log on the host, read through the admin container.
	if out, code := execIn("admin", "dmesg"); code != 0 {
		t.Errorf("admin container: dmesg: exit %d: %s", code, out)
	} else {
		for _, op := range ops {
			if !regexp.MustCompile(op.avc).MatchString(out) {
				t.Errorf("the host's kernel log (dmesg in the admin container) lacks the denial of %q: want %s", op.name, op.avc)
			}
		}
	}
	if out, code := execIn("admin", "cat "+hostFile+" && rm "+linked+" "+hostFile); code != 0 || out != "admin\n" {
		t.Errorf("admin container: the host file after both writes: exit %d, %q; want the admin container's %q", code, out, "admin\n")
	}
	if out := apiclientOK(t, sock, "exec", "control", "--", "apiclient", "get", "settings.motd"); !strings.Contains(out, `"motd"`) {
		t.Errorf("control container after the denials: apiclient get settings.motd printed %q", out)
	}
}
