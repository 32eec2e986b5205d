package e2e

import (
	"path/filepath"
	"regexp"
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
