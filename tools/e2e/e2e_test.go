package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
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

// builds holds one build per variant for the test binary.
var builds struct {
	sync.Mutex
	byVariant map[string]*build
}

type build struct {
	once      sync.Once
	image     string
	dataImage string // the split plan's data disk; "" for the unified plan
	rootHash  string
	err       error
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
	return builtVariant(t, variant)
}

// builtVariant is builtImage for any variant.
func builtVariant(t *testing.T, v string) (img, rootHash string) {
	t.Helper()
	b := buildVariant(t, v)
	return b.image, b.rootHash
}

// builtSplitVariant builds a variant of the split partition plan and
// returns its OS disk and data disk images.
func builtSplitVariant(t *testing.T, v string) (img, data string) {
	t.Helper()
	b := buildVariant(t, v)
	if b.dataImage == "" {
		t.Fatalf("variant %s: no data disk image next to %s", v, b.image)
	}
	return b.image, b.dataImage
}

// buildVariant runs `buildctl make` for v once per test binary.
func buildVariant(t *testing.T, v string) *build {
	t.Helper()
	builds.Lock()
	if builds.byVariant == nil {
		builds.byVariant = map[string]*build{}
	}
	b := builds.byVariant[v]
	if b == nil {
		b = &build{}
		builds.byVariant[v] = b
	}
	builds.Unlock()
	b.once.Do(func() {
		root := projectRoot(t)
		var out, errb bytes.Buffer
		start := time.Now()
		code := buildctl.Main(context.Background(), []string{"-C", root, "--variant", v, "make"}, &out, &errb)
		if code != 0 {
			b.err = fmt.Errorf("buildctl make exited %d:\n%s\n%s", code, out.String(), errb.String())
			return
		}
		t.Logf("buildctl make (%s) took %.1fs:\n%s", v, time.Since(start).Seconds(), out.String())
		m := regexp.MustCompile(`verity root hash ([0-9a-f]{64})`).FindStringSubmatch(out.String())
		if m == nil {
			b.err = fmt.Errorf("buildctl make printed no verity root hash:\n%s", out.String())
			return
		}
		b.rootHash = m[1]
		dir, err := image.Latest(filepath.Join(root, "build"), v, "x86_64")
		if err != nil {
			b.err = err
			return
		}
		b.image, b.dataImage, b.err = image.FindDiskImage(dir)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b
}

// consoleLog returns where a test's console log goes: a temporary file, or
// a file named after the test in $PETREL_E2E_CONSOLE_DIR when that is set
// (to keep the logs of a run).
func consoleLog(t *testing.T) string {
	t.Helper()
	if dir := os.Getenv("PETREL_E2E_CONSOLE_DIR"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".log")
	}
	return filepath.Join(t.TempDir(), "console.log")
}

// bootUntilReady boots opts and waits for the ready line.
func bootUntilReady(t *testing.T, opts qemu.Options) (*qemu.VM, qemu.Line) {
	t.Helper()
	opts.ConsoleLog = consoleLog(t)
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

// updateImage is a copy of the built image prepared as an update leaves it:
// bank B holds a copy of bank A (BOOT, ROOT and HASH), is marked valid with
// one try and is the next bank.
type updateImage struct {
	path   string
	envOff int64 // the boot-state sector
	parts  map[string][2]int64
}

// prepareUpdate copies src, copies bank A to bank B, lets edit change B
// (nil: a faithful copy) and applies what an update does to the boot
// state (clear-inactive, mark-inactive-valid, upgrade-to-inactive), then
// lets state change the result.
func prepareUpdate(t *testing.T, src string, edit func(f *os.File, u *updateImage), state func(*bootstate.State)) *updateImage {
	t.Helper()
	u := &updateImage{path: copyDisk(t, src, "update.img"), parts: map[string][2]int64{}}
	f, err := os.OpenFile(u.path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	table, err := gpt.Read(t.Context(), f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range table.Partitions {
		u.parts[p.Name] = [2]int64{int64(p.FirstLBA) * gpt.SectorSize, int64(p.LastLBA-p.FirstLBA+1) * gpt.SectorSize}
	}
	for _, k := range []string{"BOOT", "ROOT", "HASH"} {
		a, b := u.part(t, disklayout.Label("PETREL", k+"-A")), u.part(t, disklayout.Label("PETREL", k+"-B"))
		if a[1] != b[1] {
			t.Fatalf("%s-A is %d bytes, %s-B %d", k, a[1], k, b[1])
		}
		if _, err := io.Copy(io.NewOffsetWriter(f, b[0]), io.NewSectionReader(f, a[0], a[1])); err != nil {
			t.Fatalf("copy %s-A to %s-B: %v", k, k, err)
		}
	}
	if edit != nil {
		edit(f, u)
	}
	if u.envOff, err = bootstate.LocateEnv(t.Context(), f, u.part(t, "EFI-SYSTEM")[0]); err != nil {
		t.Fatal(err)
	}
	_, after, err := bootstate.Update(t.Context(), f, u.envOff, func(s bootstate.State) (bootstate.State, error) {
		s, err := bootstate.ClearInactive(s, bootstate.BankA)
		if err == nil {
			s, err = bootstate.MarkInactiveValid(s, bootstate.BankA)
		}
		if err == nil {
			s, err = bootstate.UpgradeToInactive(s, bootstate.BankA)
		}
		if err == nil && state != nil {
			state(&s)
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
	return u
}

// part returns the byte offset and size of the partition named label.
func (u *updateImage) part(t *testing.T, label string) [2]int64 {
	t.Helper()
	p, ok := u.parts[label]
	if !ok {
		t.Fatalf("no partition %q", label)
	}
	return p
}

// state reads the boot state back.
func (u *updateImage) state(t *testing.T) bootstate.State {
	t.Helper()
	f, err := os.Open(u.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, _, err := bootstate.Read(t.Context(), f, u.envOff)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// consoleIndex returns the index of the first console line at or after
// from that matches re, or -1.
func consoleIndex(lines []qemu.Line, from int, re *regexp.Regexp) int {
	for i := max(from, 0); i < len(lines); i++ {
		if re.MatchString(lines[i].Text) {
			return i
		}
	}
	return -1
}

// Console lines of the boot chain: the selection script's choice (see
// tools/grub/script.tmpl) and the Debian 6.1 kernel's dm-verity error with
// restart_on_corruption ("device-mapper: verity: MAJ:MIN: data block N is
// corrupted", then a restart).
var (
	grubBootsA    = regexp.MustCompile(`^petrel: booting bank a from`)
	grubBootsB    = regexp.MustCompile(`^petrel: booting bank b from`)
	verityCorrupt = regexp.MustCompile(`device-mapper: verity: \d+:\d+: data block \d+ is corrupted`)
	verityRestart = regexp.MustCompile(`reboot: Restarting system with command 'dm-verity device corrupted'`)
)

// TestFallbackToGoodBank prepares bank B as a copy of bank A with one byte
// of its root flipped, makes B the next bank with one try, and gives bank
// A one try and no success mark, so that only this boot's
// mark-successful-boot can mark it. The host must boot B, have dm-verity
// refuse B's root (the kernel's corruption line after GRUB chose B),
// reboot by itself onto A, and mark A successful.
func TestFallbackToGoodBank(t *testing.T) {
	src, _ := builtImage(t)
	u := prepareUpdate(t, src, func(f *os.File, u *updateImage) {
		// Flip one byte of B's root, in the EROFS superblock, which every
		// mount reads, so dm-verity must catch it on the first boot of B.
		off := u.part(t, disklayout.Label("PETREL", "ROOT-B"))[0] + 1024
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, off); err != nil {
			t.Fatal(err)
		}
		b[0] ^= 0xff
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}, func(s *bootstate.State) {
		s.A.TriesLeft, s.A.Successful = 1, false
	})
	if s := u.state(t); s.A != (bootstate.BankState{Priority: 1, TriesLeft: 1}) || s.B != (bootstate.BankState{Priority: 2, TriesLeft: 1}) {
		t.Fatalf("prepared state %+v", s)
	}

	opts := qemu.Options{Image: u.path, Firmware: qemu.UEFI, Reboot: true, ConsoleLog: consoleLog(t)}
	vm, err := qemu.Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Stop)
	// One failed boot (bank B's) is expected, not two.
	line, readyIdx, err := vm.WaitReady(t.Context(), 0, bootTimeout, qemu.Policy{FailedBoots: 1})
	if err != nil {
		t.Fatalf("boot %s: %v", u.path, err)
	}
	t.Logf("host ready after %.1fs: %s", line.At.Seconds(), line.Text)
	if !strings.HasSuffix(line.Text, "bank A") {
		t.Errorf("ready line %q: want the host back on bank A", line.Text)
	}
	lines := vm.Lines()
	iB := consoleIndex(lines, 0, grubBootsB)
	iV := consoleIndex(lines, iB, verityCorrupt)
	iA := consoleIndex(lines, iV, grubBootsA)
	switch {
	case iB < 0:
		t.Errorf("console shows no boot of bank B (%q)", grubBootsB)
	case iV < 0:
		t.Errorf("console shows no dm-verity corruption (%q) after GRUB chose bank B", verityCorrupt)
	case iA < 0 || iA > readyIdx:
		t.Errorf("console shows no boot of bank A (%q) between the corruption and host ready", grubBootsA)
	default:
		t.Logf("bank B at line %d, %q at %d, bank A at %d, ready at %d", iB, lines[iV].Text, iV, iA, readyIdx)
		// The corruption ended B's boot: the kernel restarted for it.
		if j := consoleIndex(lines[:iA], iV, verityRestart); j < 0 {
			t.Errorf("console shows no restart (%q) between the corruption and bank A's boot", verityRestart)
		}
		// Nothing else went wrong in B's boot.
		if j := consoleIndex(lines[:iA], iB, regexp.MustCompile(`petrel-init: fatal|Kernel panic|\[FAILED\]`)); j >= 0 {
			t.Errorf("bank B's boot also shows %q", lines[j].Text)
		}
		if j := consoleIndex(lines[:iA], iB, regexp.MustCompile(`petrel: A prio=1 tries=1 ok=0 B prio=2 tries=0 ok=0`)); j < 0 {
			t.Errorf("GRUB's state line before bank A's boot does not show A with its one try and not successful")
		}
	}
	vm.Stop()
	s := u.state(t)
	if s.B.TriesLeft != 0 || s.B.Successful {
		t.Errorf("bank B after its failed boot = %+v, want no tries left and not successful", s.B)
	}
	if !s.A.Successful || s.A.TriesLeft != 0 {
		t.Errorf("bank A after the fallback = %+v, want successful (marked by this boot) with its try spent", s.A)
	}
	if next := bootstate.Next(s); next.Bank != bootstate.BankA {
		t.Errorf("next boot after the fallback picks %v, want A", next.Bank)
	}
}

// TestUpdateToGoodBank prepares bank B as a faithful copy of bank A, as a
// good update leaves it, and boots: the host must come up on bank B and
// mark it successful, and a reboot asked for through the API bridge must
// come up on bank B again.
func TestUpdateToGoodBank(t *testing.T) {
	src, _ := builtImage(t)
	u := prepareUpdate(t, src, nil, nil)
	vm, line, sock := bootWithAPI(t, qemu.Options{Image: u.path, Firmware: qemu.UEFI})
	if !strings.HasSuffix(line.Text, "bank B") {
		t.Fatalf("ready line %q: want bank B", line.Text)
	}
	if s := u.state(t); !s.B.Successful || s.B.Priority != 2 || s.A.Priority != 1 {
		t.Errorf("state after the first boot of B = %+v, want B successful with priority 2", s)
	}
	from := vm.Len()
	apiclientOK(t, sock, "reboot")
	line, _, err := vm.WaitReady(t.Context(), from, bootTimeout, qemu.Policy{})
	if err != nil {
		t.Fatalf("boot after the reboot: %v", err)
	}
	if !strings.HasSuffix(line.Text, "bank B") {
		t.Errorf("ready line after the reboot %q: want bank B", line.Text)
	}
	lines := vm.Lines()
	if i := consoleIndex(lines, from, regexp.MustCompile(`petrel: A prio=1 tries=0 ok=1 B prio=2 tries=0 ok=1`)); i < 0 {
		t.Errorf("GRUB's state line of the second boot does not show B successful")
	}
	if i := consoleIndex(lines, from, grubBootsA); i >= 0 {
		t.Errorf("the second boot chose bank A: %q", lines[i].Text)
	}
	vm.Stop()
	if s := u.state(t); s != (bootstate.State{A: bootstate.BankState{Priority: 1, Successful: true}, B: bootstate.BankState{Priority: 2, Successful: true}}) {
		t.Errorf("state after two boots of B = %+v", s)
	}
}

// TestBootFailsFast boots a copy of the image whose boot-state sector is
// damaged: GRUB falls back to bank A, but partflip cannot read the state,
// so mark-successful-boot fails and host ready cannot come. buildctl boot
// must say so, naming the unit, instead of waiting out its timeout.
func TestBootFailsFast(t *testing.T) {
	src, _ := builtImage(t)
	img := copyDisk(t, src, "bad-state.img")
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	envOff := bootStateOffset(t, f)
	// Break the signature: GRUB's load_env and partflip both refuse it.
	if _, err := f.WriteAt([]byte("X"), envOff); err != nil {
		t.Fatal(err)
	}
	f.Close()

	var out, errb bytes.Buffer
	start := time.Now()
	args := []string{"-C", projectRoot(t), "boot", img, "--quiet", "--timeout", bootTimeout.String(), "--console-log", consoleLog(t)}
	code := buildctl.Main(t.Context(), args, &out, &errb)
	t.Logf("buildctl boot exited %d after %.1fs:\n%s", code, time.Since(start).Seconds(), errb.String())
	if code != 1 {
		t.Fatalf("buildctl %v = %d, want 1", args, code)
	}
	for _, want := range []string{
		"the host cannot become ready: mark-successful-boot.service failed to start",
		// systemd cuts the status line to the console's width.
		"[FAILED] Failed to start mark-successful-boo",
		"last console lines:",
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if strings.Contains(errb.String(), "did not show") {
		t.Errorf("buildctl boot waited out its timeout")
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
