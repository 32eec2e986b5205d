package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/gpt"
	"github.com/petrel-os/petrel/sources/ready"
	"github.com/petrel-os/petrel/tools/buildctl"
	"github.com/petrel-os/petrel/tools/image"
	"github.com/petrel-os/petrel/tools/qemu"
)

// variant is the image the end-to-end tests build and boot: the default.
const variant = "metal-dev"

// bootTimeout bounds one boot under software emulation.
const bootTimeout = 10 * time.Minute

var built struct {
	once     sync.Once
	image    string
	rootHash string
	err      error
}

// projectRoot is the repository root, two levels up from this package.
func projectRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// builtImage runs `buildctl make` for the default variant once per test
// binary (the package builds are incremental) and returns the raw image.
func builtImage(t *testing.T) (img, rootHash string) {
	t.Helper()
	built.once.Do(func() {
		root := projectRoot(t)
		var out, errb bytes.Buffer
		start := time.Now()
		code := buildctl.Main(context.Background(), []string{"-C", root, "--variant", variant, "make"}, &out, &errb)
		if code != 0 {
			built.err = fmt.Errorf("buildctl make exited %d:\n%s\n%s", code, out.String(), errb.String())
			return
		}
		t.Logf("buildctl make took %.1fs:\n%s", time.Since(start).Seconds(), out.String())
		m := regexp.MustCompile(`verity root hash ([0-9a-f]{64})`).FindStringSubmatch(out.String())
		if m == nil {
			built.err = fmt.Errorf("buildctl make printed no verity root hash:\n%s", out.String())
			return
		}
		built.rootHash = m[1]
		dir, err := image.Latest(filepath.Join(root, "build"), variant, "x86_64")
		if err != nil {
			built.err = err
			return
		}
		built.image, _, built.err = image.FindDiskImage(dir)
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.image, built.rootHash
}

// bootUntilReady boots opts and waits for the ready line.
func bootUntilReady(t *testing.T, opts qemu.Options) (*qemu.VM, qemu.Line) {
	t.Helper()
	opts.ConsoleLog = filepath.Join(t.TempDir(), "console.log")
	vm, err := qemu.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Stop)
	line, _, err := vm.WaitFor(t.Context(), regexp.MustCompile(regexp.QuoteMeta(ready.Marker)), 0, bootTimeout)
	if err != nil {
		t.Fatalf("boot %s (%s): %v", filepath.Base(opts.Image), opts.Firmware, err)
	}
	t.Logf("%s: host ready after %.1fs: %s", opts.Firmware, line.At.Seconds(), line.Text)
	return vm, line
}

// assertVerityRoot checks the initramfs' console lines: the root is the
// dm-verity device with the image's root hash, verified ("V"), and
// mounted read-only; DATA and PRIVATE are mounted before systemd starts.
func assertVerityRoot(t *testing.T, vm *qemu.VM, rootHash string) {
	t.Helper()
	var console strings.Builder
	for _, l := range vm.Lines() {
		console.WriteString(l.Text + "\n")
	}
	for _, re := range []string{
		`petrel-init: created device-mapper device root \(/dev/dm-0, \d+:\d+, ro\) verity root hash ` + rootHash + `, status "verity V"`,
		`petrel-init: mounted /dev/dm-0 read-only on / \(erofs\)`,
		`petrel-init: mounted PARTUUID=` + disklayout.DataPreferredGUID.String() + ` \(/dev/vda\d+\) on /local \(ext4\)`,
		`petrel-init: mounted /local/var \(/newroot/local/var\) on /var \(bind\)`,
		`petrel-init: mounted PARTLABEL=PETREL-PRIVATE \(/dev/vda\d+\) on /var/lib/petrel \(ext4\)`,
	} {
		if !regexp.MustCompile(re).MatchString(console.String()) {
			t.Errorf("console lacks %q", re)
		}
	}
}

func TestBootUEFI(t *testing.T) {
	img, rootHash := builtImage(t)
	vm, line := bootUntilReady(t, qemu.Options{Image: img, Snapshot: true, Firmware: qemu.UEFI})
	if !strings.HasSuffix(line.Text, "bank A") {
		t.Errorf("ready line %q does not name bank A", line.Text)
	}
	assertVerityRoot(t, vm, rootHash)
}

func TestBootBIOS(t *testing.T) {
	img, rootHash := builtImage(t)
	vm, line := bootUntilReady(t, qemu.Options{Image: img, Snapshot: true, Firmware: qemu.BIOS})
	if !strings.HasSuffix(line.Text, "bank A") {
		t.Errorf("ready line %q does not name bank A", line.Text)
	}
	assertVerityRoot(t, vm, rootHash)
}

// TestBootTimeout boots the image with a timeout too short to reach the
// ready line: buildctl boot must fail with the last console lines.
func TestBootTimeout(t *testing.T) {
	img, _ := builtImage(t)
	var out, errb bytes.Buffer
	args := []string{"-C", projectRoot(t), "boot", img, "--quiet", "--timeout", "6s", "--console-log", filepath.Join(t.TempDir(), "console.log")}
	code := buildctl.Main(t.Context(), args, &out, &errb)
	if code != 1 {
		t.Fatalf("buildctl %v = %d, want 1; stderr:\n%s", args, code, errb.String())
	}
	for _, want := range []string{`did not show "` + ready.Marker + `" within 6s; last console lines:`, "\n  "} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}
}

// TestFallbackToGoodBank prepares bank B as a copy of bank A with one byte of
// its root flipped, makes B the next bank with one try, and boots: the host
// must end up running bank A with B no longer bootable, by itself.
func TestFallbackToGoodBank(t *testing.T) {
	src, _ := builtImage(t)
	img := filepath.Join(t.TempDir(), "fallback.img")
	if out, err := exec.Command("cp", "--sparse=always", src, img).CombinedOutput(); err != nil {
		t.Fatalf("copy image: %v\n%s", err, out)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	table, err := gpt.Read(t.Context(), f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	part := func(label string) (off, size int64) {
		p, ok := table.ByName(label)
		if !ok {
			t.Fatalf("no partition %q", label)
		}
		return int64(p.FirstLBA) * gpt.SectorSize, int64(p.LastLBA-p.FirstLBA+1) * gpt.SectorSize
	}
	for _, k := range []string{"BOOT", "ROOT", "HASH"} {
		aOff, aSize := part(disklayout.Label("PETREL", k+"-A"))
		bOff, bSize := part(disklayout.Label("PETREL", k+"-B"))
		if aSize != bSize {
			t.Fatalf("%s-A is %d bytes, %s-B %d", k, aSize, k, bSize)
		}
		if _, err := io.Copy(io.NewOffsetWriter(f, bOff), io.NewSectionReader(f, aOff, aSize)); err != nil {
			t.Fatalf("copy %s-A to %s-B: %v", k, k, err)
		}
	}
	// Flip one byte of B's root: in the EROFS superblock, which every
	// mount reads, so dm-verity must catch it on the first boot of B.
	rootB, _ := part(disklayout.Label("PETREL", "ROOT-B"))
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, rootB+1024); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, rootB+1024); err != nil {
		t.Fatal(err)
	}
	espOff, _ := part("EFI-SYSTEM")
	envOff, err := bootstate.LocateEnv(t.Context(), f, espOff)
	if err != nil {
		t.Fatal(err)
	}
	// What an update does: clear B, write it, mark it valid (one try),
	// make it the next bank.
	_, after, err := bootstate.Update(t.Context(), f, envOff, func(s bootstate.State) (bootstate.State, error) {
		s, err := bootstate.ClearInactive(s, bootstate.BankA)
		if err == nil {
			s, err = bootstate.MarkInactiveValid(s, bootstate.BankA)
		}
		if err == nil {
			s, err = bootstate.UpgradeToInactive(s, bootstate.BankA)
		}
		return s, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if next := bootstate.Next(after); next.Bank != bootstate.BankB {
		t.Fatalf("prepared state %+v would boot %v, want B", after, next.Bank)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}

	vm, line := bootUntilReady(t, qemu.Options{Image: img, Firmware: qemu.UEFI, Reboot: true})
	if !strings.HasSuffix(line.Text, "bank A") {
		t.Errorf("ready line %q: want the host back on bank A", line.Text)
	}
	var console strings.Builder
	for _, l := range vm.Lines() {
		console.WriteString(l.Text + "\n")
	}
	if !regexp.MustCompile(`(?i)verity.*(corrupt|mismatch)|petrel-init: fatal`).MatchString(console.String()) {
		t.Errorf("console shows no failed boot of bank B before the fallback")
	}
	// Let the host finish mark-successful-boot, then read the state back.
	vm.Stop()
	s, _, err := bootstate.Read(t.Context(), f, envOff)
	if err != nil {
		t.Fatal(err)
	}
	if s.B.TriesLeft != 0 || s.B.Successful {
		t.Errorf("bank B after its failed boot = %+v, want no tries left and not successful", s.B)
	}
	if !s.A.Successful {
		t.Errorf("bank A after the fallback = %+v, want successful", s.A)
	}
	if next := bootstate.Next(s); next.Bank != bootstate.BankA {
		t.Errorf("next boot after the fallback picks %v, want A", next.Bank)
	}
}

// TestUserData boots with a CIDATA config drive whose user data sets the
// message of the day and the host name: both must show on the console.
func TestUserData(t *testing.T) {
	img, _ := builtImage(t)
	drive := filepath.Join(t.TempDir(), "cidata.img")
	ud := "[settings]\nmotd = \"hello from user data\"\n\n[settings.network]\nhostname = \"petrel-test\"\n"
	if err := qemu.ConfigDrive(t.Context(), []byte(ud), drive); err != nil {
		t.Fatal(err)
	}
	vm, _ := bootUntilReady(t, qemu.Options{Image: img, Snapshot: true, Firmware: qemu.UEFI, ConfigDrive: drive})
	var console strings.Builder
	for _, l := range vm.Lines() {
		console.WriteString(l.Text + "\n")
	}
	for _, want := range []string{"petrel: hostname petrel-test", "petrel: motd: hello from user data"} {
		if !strings.Contains(console.String(), want) {
			t.Errorf("console lacks %q", want)
		}
	}
}
