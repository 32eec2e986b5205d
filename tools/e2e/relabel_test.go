package e2e

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/gpt"
	"github.com/petrel-os/petrel/sources/selinux"
	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/qemu"
)

// relabelLine is the initramfs's console line for a file system it
// labelled (sources/initramfs, relabel).
var relabelLine = regexp.MustCompile(`petrel-init: labelled (\d+) files on (\S+) \(a file system from before SELinux\) in (\d+\.\d)s`)

// TestRelabelFromBeforeSELinux updates, in effect, a host installed from a
// release without SELinux: a copy of the image boots once and gets a
// setting through the API (the datastore has state, the journal has
// files), then every security.selinux attribute of its DATA and PRIVATE
// is removed, as such a host has them, and 5,000 files without labels are
// added to DATA (a container store's worth, for the relabel's time). The
// next boot must relabel both file systems in the initramfs (its console
// lines, counting every file of each), come up ready with zero AVC
// denials, keep the setting, and let the API server write the relabelled
// datastore (a second setting). A third boot finds them labelled and
// prints no relabel line, and the labels on disk are the policy's (DATA's
// var/log/journal is state_t by its host path /var/log/journal, the
// datastore datastore_t).
func TestRelabelFromBeforeSELinux(t *testing.T) {
	src, _ := builtImage(t)
	img := copyDisk(t, src, "relabel.img")

	vm, _, sock := bootWithAPI(t, qemu.Options{Image: img, Firmware: qemu.UEFI})
	apiclientOK(t, sock, "set", "motd=kept across the relabel")
	if got := getJSON(t, sock, "settings.motd"); fmt.Sprint(got["settings"]) != "map[motd:kept across the relabel]" {
		t.Fatalf("first boot: settings.motd reads %v", got)
	}
	if line := findLine(vm.Lines(), relabelLine); line != "" {
		t.Errorf("first boot of a labelled image relabelled: %q", line)
	}
	vm.Stop()

	stripped := map[string]int{}
	for target, part := range hostPartitions(t, img) {
		stripped[target] = withPartition(t, img, part, func(t *testing.T, dir string) int {
			n := stripLabels(t, dir)
			t.Logf("removed the labels of the %d files of %s (mounted at %s on a host)", n, part.name, target)
			if target == "/local" {
				n += addFiles(t, filepath.Join(dir, fixtureDir))
			}
			return n
		})
	}

	vm, _, sock = bootWithAPI(t, qemu.Options{Image: img, Firmware: qemu.UEFI})
	second := consoleText(vm)
	got := map[string]int{}
	for _, m := range relabelLine.FindAllStringSubmatch(second, -1) {
		n, _ := strconv.Atoi(m[1])
		got[m[2]] = n
		t.Logf("relabel: %s", m[0])
	}
	for target, n := range stripped {
		if got[target] != n {
			t.Errorf("second boot labelled %d files on %s, want the %d stripped (console lines %v)", got[target], target, n, got)
		}
	}
	if v := getJSON(t, sock, "settings.motd"); fmt.Sprint(v["settings"]) != "map[motd:kept across the relabel]" {
		t.Errorf("after the relabel settings.motd reads %v", v)
	}
	apiclientOK(t, sock, "set", "motd=written to a relabelled datastore")
	if v := getJSON(t, sock, "settings.motd"); fmt.Sprint(v["settings"]) != "map[motd:written to a relabelled datastore]" {
		t.Errorf("after a set on the relabelled host settings.motd reads %v", v)
	}
	vm.Stop()
	second = consoleText(vm)
	checkNoDenials(t, "second boot", second)

	vm, _, sock = bootWithAPI(t, qemu.Options{Image: img, Firmware: qemu.UEFI})
	if v := getJSON(t, sock, "settings.motd"); fmt.Sprint(v["settings"]) != "map[motd:written to a relabelled datastore]" {
		t.Errorf("third boot: settings.motd reads %v", v)
	}
	vm.Stop()
	third := consoleText(vm)
	if line := findLine(vm.Lines(), relabelLine); line != "" {
		t.Errorf("third boot relabelled again: %q", line)
	}
	if !strings.Contains(third, "petrel-init: loaded SELinux policy petrel") {
		t.Error("third boot's console lacks the policy load: it was not read")
	}
	checkNoDenials(t, "third boot", third)

	want := map[string]map[string]string{
		"/local": {
			"/": "local_t", "/var": "local_t", "/opt": "local_t", "/var/log/journal": "state_t", "/var/lib/systemd": "state_t",
			"/var/lib/petrel": "private_t", "/" + fixtureDir + "/d19/f249": "local_t",
		},
		"/var/lib/petrel": {"/": "private_t", "/datastore": "datastore_t", "/datastore/current": "datastore_t"},
	}
	for target, part := range hostPartitions(t, img) {
		withPartition(t, img, part, func(t *testing.T, dir string) int {
			for name, typ := range want[target] {
				l, err := selinux.Label(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				if selinux.Type(l) != typ {
					t.Errorf("%s%s on disk: label %q, want type %s", target, name, l, typ)
				}
			}
			return 0
		})
	}
}

// hostPartition is DATA or PRIVATE of an image.
type hostPartition struct {
	name         string
	offset, size int64 // bytes
}

// hostPartitions returns DATA and PRIVATE of img by where a host mounts
// them.
func hostPartitions(t *testing.T, img string) map[string]hostPartition {
	t.Helper()
	table, err := gpt.ReadFile(t.Context(), img)
	if err != nil {
		t.Fatal(err)
	}
	data, ok := table.ByGUID(disklayout.DataPreferredGUID)
	if !ok {
		t.Fatal("no DATA partition in the image")
	}
	private, ok := table.ByName(disklayout.Label("PETREL", disklayout.KeyPrivate))
	if !ok {
		t.Fatal("no PRIVATE partition in the image")
	}
	parts := map[string]hostPartition{}
	for target, p := range map[string]struct {
		name string
		gpt.Partition
	}{"/local": {"DATA", data}, "/var/lib/petrel": {"PRIVATE", private}} {
		off, size := table.Bytes(p.Partition)
		parts[target] = hostPartition{p.name, off, size}
	}
	return parts
}

// withPartition mounts partition p of img (ext4) through a loop device,
// runs fn on the mount point, unmounts it and detaches the loop device,
// and returns what fn returned.
func withPartition(t *testing.T, img string, p hostPartition, fn func(t *testing.T, dir string) int) int {
	t.Helper()
	loop := strings.TrimSpace(testkit.Run(t, "losetup", "--find", "--show", "--offset", strconv.FormatInt(p.offset, 10),
		"--sizelimit", strconv.FormatInt(p.size, 10), img))
	defer testkit.Run(t, "losetup", "--detach", loop)
	dir := t.TempDir()
	if err := unix.Mount(loop, dir, "ext4", 0, ""); err != nil {
		t.Fatalf("mount %s (%s of %s) on %s: %v", loop, p.name, img, dir, err)
	}
	defer func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	}()
	return fn(t, dir)
}

// stripLabels removes the security.selinux attribute of every file below
// dir, as a file system written without SELinux has none, and returns how
// many files there are: all of them are the relabel's to label.
func stripLabels(t *testing.T, dir string) int {
	t.Helper()
	n, labelled := 0, 0
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n++
		err = unix.Lremovexattr(p, selinux.Xattr)
		switch {
		case errors.Is(err, unix.ENODATA):
			return nil
		case err != nil:
			return fmt.Errorf("remove the label of %s: %w", p, err)
		}
		labelled++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if labelled < n/2 {
		t.Fatalf("%d of %d files below %s had a label: not a file system of an SELinux host", labelled, n, dir)
	}
	return n
}

// fixtureDir holds files that stand for a used host's container store on
// DATA, for the relabel's time (docs/performance.md); nothing reads them.
const fixtureDir = "var/lib/relabel-fixture"

// addFiles creates dir with 20 directories of 250 empty files each, all
// without labels, and returns how many files it created.
func addFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for d := range 20 {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := range 250 {
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d", f)), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		n += 251
	}
	return n + 1
}

// findLine returns the first console line that matches re, or "".
func findLine(lines []qemu.Line, re *regexp.Regexp) string {
	if i := consoleIndex(lines, 0, re); i >= 0 {
		return lines[i].Text
	}
	return ""
}

// checkNoDenials fails the test for every AVC denial and undefined class
// on a boot's console.
func checkNoDenials(t *testing.T, boot, console string) {
	t.Helper()
	for _, d := range selinux.Denials(console) {
		t.Errorf("%s: AVC denial on the console: %s", boot, d)
	}
	for _, u := range selinux.Undefined(console) {
		t.Errorf("%s: the policy lacks what the kernel knows: %s", boot, u)
	}
	if !strings.Contains(console, "petrel: selinux enforcing, policy petrel") {
		t.Errorf("%s: console lacks the ready line's SELinux status: not enforcing, or not read", boot)
	}
}
