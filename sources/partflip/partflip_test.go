package partflip

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/cli"
	"github.com/petrel-os/petrel/sources/testkit"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const (
	uuidBootA = "22222222-0000-4000-8000-00000000000a"
	uuidBootB = "22222222-0000-4000-8000-00000000000b"
	espStart  = 10240 // sector
)

// makeImage builds a GPT disk image with sgdisk, mkfs.vfat and mtools: an
// ESP holding EFI/BOOT/grubenv with state s, BOOT-A as partition 3 and
// BOOT-B as partition 8 (the in-place layout numbers).
func makeImage(t *testing.T, s bootstate.State) string {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 24<<20); err != nil {
		t.Fatal(err)
	}
	const boot = "6B636168-7420-6568-2070-6C616E657421"
	testkit.Run(t, "sgdisk", "-o",
		"-n1:2048:10239", "-t1:EF02",
		fmt.Sprintf("-n2:%d:18431", espStart), "-t2:EF00",
		"-n3:18432:20479", "-t3:"+boot, "-u3:"+uuidBootA,
		"-n4:20480:22527", "-t4:8300",
		"-n8:22528:24575", "-t8:"+boot, "-u8:"+uuidBootB,
		"-n9:24576:26623", "-t9:8300",
		img)
	esp := filepath.Join(dir, "esp.img")
	testkit.Run(t, "mkfs.vfat", "-C", esp, "4096")
	mt := []string{"MTOOLS_SKIP_CHECK=1"}
	testkit.RunEnv(t, mt, "mmd", "-i", esp, "::/EFI", "::/EFI/BOOT")
	env, err := s.Env()
	if err != nil {
		t.Fatal(err)
	}
	block, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ge := filepath.Join(dir, "grubenv")
	if err := os.WriteFile(ge, block, 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.RunEnv(t, mt, "mcopy", "-i", esp, ge, "::/EFI/BOOT/grubenv")
	data, err := os.ReadFile(esp)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, espStart*512); err != nil {
		t.Fatal(err)
	}
	return img
}

// cmdline writes a kernel command line as the bank's grub.cfg makes it.
func cmdline(t *testing.T, uuid string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cmdline")
	line := fmt.Sprintf(`console=ttyS0 root=/dev/dm-0 ro "dm-mod.create=root,,,ro,0 8 verity 1 PARTUUID=%s/PARTNROFF=1 PARTUUID=%s/PARTNROFF=2 4096 4096 1 1 sha256 00 - 2 restart_on_corruption ignore_zero_blocks" -- x`+"\n", uuid, uuid)
	if err := os.WriteFile(p, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// partflip runs Main and returns exit code, stdout and stderr.
func partflip(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func status(t *testing.T, args ...string) Status {
	t.Helper()
	code, out, errOut := partflip(t, append([]string{"status", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("partflip status %v: exit %d: %s", args, code, errOut)
	}
	var s Status
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status JSON %q: %v", out, err)
	}
	return s
}

func TestStatusText(t *testing.T) {
	t.Parallel()
	img := makeImage(t, bootstate.State{A: bootstate.BankState{Priority: 1, Successful: true}, B: bootstate.BankState{Priority: 2, TriesLeft: 1}})
	code, out, errOut := partflip(t, "status", "--disk", img, "--cmdline", cmdline(t, uuidBootA))
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	got := []byte(strings.ReplaceAll(out, img, "DISK"))
	golden := filepath.Join("testdata", "status.txt")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (run go test -update): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("status output:\n%s\nwant:\n%s", got, want)
	}
}

// TestUpdateFlow runs the update flow's commands against an image file and
// checks each state, with bootstate.Next standing in for GRUB between boots.
func TestUpdateFlow(t *testing.T) {
	t.Parallel()
	img := makeImage(t, bootstate.Initial())
	onA, onB := cmdline(t, uuidBootA), cmdline(t, uuidBootB)

	s := status(t, "--disk", img, "--cmdline", onA)
	if s.Booted == nil || *s.Booted != bootstate.BankA || s.Next != bootstate.BankA || s.A != bootstate.Initial().A {
		t.Fatalf("initial status = %+v", s)
	}
	for _, c := range []string{"clear-inactive", "mark-inactive-valid", "upgrade-to-inactive"} {
		if code, _, errOut := partflip(t, c, "--disk", img, "--cmdline", onA); code != 0 {
			t.Fatalf("%s: exit %d: %s", c, code, errOut)
		}
	}
	s = status(t, "--disk", img, "--cmdline", onA)
	want := bootstate.State{A: bootstate.BankState{Priority: 1, Successful: true}, B: bootstate.BankState{Priority: 2, TriesLeft: 1}}
	if (bootstate.State{A: s.A, B: s.B}) != want || s.Next != bootstate.BankB || !s.NextSpendsTry {
		t.Fatalf("status after upgrade-to-inactive = %+v, want state %+v and next B spending a try", s, want)
	}
	// A second upgrade is refused and changes nothing.
	code, _, errOut := partflip(t, "upgrade-to-inactive", "--disk", img, "--cmdline", onA)
	if code != 1 || !strings.Contains(errOut, "already marked") {
		t.Errorf("second upgrade-to-inactive: exit %d, stderr %q; want 1 and \"already marked\"", code, errOut)
	}
	// GRUB boots B and spends its try.
	bootWithNext(t, img)
	if code, _, errOut := partflip(t, "mark-successful-boot", "--disk", img, "--cmdline", onB); code != 0 {
		t.Fatalf("mark-successful-boot: exit %d: %s", code, errOut)
	}
	s = status(t, "--disk", img, "--cmdline", onB)
	if *s.Booted != bootstate.BankB || !s.B.Successful || s.B.TriesLeft != 0 || s.Next != bootstate.BankB || s.NextSpendsTry {
		t.Fatalf("status after mark-successful-boot on B = %+v", s)
	}
	// Roll back to A (it booted successfully before), then cancel that.
	if code, _, errOut := partflip(t, "rollback-to-inactive", "--disk", img, "--booted", "B"); code != 0 {
		t.Fatalf("rollback-to-inactive: exit %d: %s", code, errOut)
	}
	if s = status(t, "--disk", img, "--booted", "B"); s.Next != bootstate.BankA {
		t.Fatalf("next after rollback = %s, want A", s.Next)
	}
	if code, _, errOut := partflip(t, "cancel-upgrade", "--disk", img, "--booted", "B"); code != 0 {
		t.Fatalf("cancel-upgrade: exit %d: %s", code, errOut)
	}
	if s = status(t, "--disk", img, "--booted", "B"); s.Next != bootstate.BankB || s.A.Priority != 0 || s.B.Priority != 2 {
		t.Fatalf("status after cancel-upgrade = %+v", s)
	}
}

// bootWithNext applies bootstate.Next to the image, as GRUB would.
func bootWithNext(t *testing.T, img string) {
	t.Helper()
	ctx := context.Background()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	off, err := bootstate.LocateEnv(ctx, f, espStart*512)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := bootstate.Update(ctx, f, off, func(s bootstate.State) (bootstate.State, error) { return bootstate.Next(s).After, nil }); err != nil {
		t.Fatal(err)
	}
}

func TestOffsetsAndErrors(t *testing.T) {
	t.Parallel()
	img := makeImage(t, bootstate.Initial())
	base := status(t, "--disk", img, "--booted", "a")
	if base.EnvOffset%512 != 0 || base.EnvOffset < espStart*512 {
		t.Fatalf("env offset %d not inside the ESP", base.EnvOffset)
	}
	if s := status(t, "--disk", img, "--booted", "a", "--esp-offset", fmt.Sprint(espStart*512)); s.EnvOffset != base.EnvOffset {
		t.Errorf("--esp-offset: env offset %d, want %d", s.EnvOffset, base.EnvOffset)
	}
	if s := status(t, "--disk", img, "--booted", "a", "--env-offset", fmt.Sprint(base.EnvOffset)); s.A != bootstate.Initial().A {
		t.Errorf("--env-offset: state %+v", s)
	}
	noUUID := filepath.Join(t.TempDir(), "cmdline")
	if err := os.WriteFile(noUUID, []byte("console=ttyS0 quiet\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"booted unknown", []string{"mark-successful-boot", "--disk", img, "--cmdline", noUUID}, 1, "booted bank unknown"},
		{"foreign partuuid", []string{"mark-successful-boot", "--disk", img, "--cmdline", cmdline(t, "33333333-0000-4000-8000-000000000001")}, 1, "is no BOOT partition"},
		{"bad bank", []string{"status", "--disk", img, "--booted", "C"}, 1, "want A or B"},
		{"unknown flag", []string{"status", "--bogus"}, 2, "unknown flag"},
		{"single-dash long flag", []string{"status", "-disk", img}, 2, "unknown shorthand flag"},
		{"unknown subcommand", []string{"flip"}, 2, `partflip: unknown command "flip"`},
		{"argument", []string{"status", "extra"}, 2, "Run 'partflip status --help'"},
		{"help", []string{"mark-successful-boot", "--help"}, 0, ""},
		{"unaligned env offset", []string{"status", "--disk", img, "--booted", "A", "--env-offset", "100"}, 1, "not a multiple of 512"},
		{"wrong env offset", []string{"status", "--disk", img, "--booted", "A", "--env-offset", "0"}, 1, "grubenv line 1"},
		{"rollback refused", []string{"rollback-to-inactive", "--disk", img, "--booted", "A"}, 1, "no tries left"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := partflip(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("partflip %v: exit %d, stderr %q; want %d and %q", tt.args, code, errOut, tt.wantCode, tt.wantErr)
			}
		})
	}
}

// fakeBlock makes a fake /sys/class/block and /dev: vda is img, vda3 its
// partition, vdb a disk without a GPT, loop0 a virtual device.
func fakeBlock(t *testing.T, img string) (sys, dev string) {
	t.Helper()
	other := filepath.Join(t.TempDir(), "blank.img")
	if err := os.WriteFile(other, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	sys, dev = filepath.Join(root, "sys"), filepath.Join(root, "dev")
	mk := func(path, content string) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk(filepath.Join(sys, "vda", "uevent"), "DEVNAME=vda\n")
	mk(filepath.Join(sys, "vda3", "partition"), "3\n")
	mk(filepath.Join(sys, "vdb", "uevent"), "DEVNAME=vdb\n")
	mk(filepath.Join(sys, "loop0", "uevent"), "DEVNAME=loop0\n")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"vda": img, "vdb": other} {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			t.Fatal(err)
		}
	}
	return sys, dev
}

// TestDiscoverDisk finds the image through a fake /sys/class/block and /dev.
func TestDiscoverDisk(t *testing.T) {
	t.Parallel()
	sys, dev := fakeBlock(t, makeImage(t, bootstate.Initial()))
	s := status(t, "--sys-block", sys, "--dev", dev, "--cmdline", cmdline(t, uuidBootB))
	if s.Disk != filepath.Join(dev, "vda") || s.Booted == nil || *s.Booted != bootstate.BankB {
		t.Fatalf("status with discovery = %+v, want disk %s booted B", s, filepath.Join(dev, "vda"))
	}
}

// TestLargerDisk marks bank B successful on the image written to a larger
// disk (its backup GPT is not at the end), found through the fake sysfs as
// on a host.
func TestLargerDisk(t *testing.T) {
	t.Parallel()
	img := makeImage(t, bootstate.State{A: bootstate.BankState{Priority: 1, Successful: true}, B: bootstate.BankState{Priority: 2}})
	if err := os.Truncate(img, 1<<30); err != nil {
		t.Fatal(err)
	}
	sys, dev := fakeBlock(t, img)
	onB := cmdline(t, uuidBootB)
	if code, _, errOut := partflip(t, "mark-successful-boot", "--sys-block", sys, "--dev", dev, "--cmdline", onB); code != 0 {
		t.Fatalf("mark-successful-boot on the larger disk: exit %d: %s", code, errOut)
	}
	if s := status(t, "--sys-block", sys, "--dev", dev, "--cmdline", onB); !s.B.Successful || *s.Booted != bootstate.BankB {
		t.Errorf("status after mark-successful-boot = %+v, want B booted and successful", s)
	}
}

// TestConcurrentTransitions runs two transitions at once on one disk:
// mark-successful-boot (A ok=1) is held between its read and its write
// until mark-inactive-valid (B tries=1) is either done or waiting for the
// disk lock. Both changes must be in the grubenv afterwards; without the
// lock the held one would write back the state it read and lose B's try.
func TestConcurrentTransitions(t *testing.T) {
	t.Parallel()
	img := makeImage(t, bootstate.State{A: bootstate.BankState{Priority: 1}})
	ctx := context.Background()
	run := func(a *app, args ...string) <-chan string {
		done := make(chan string, 1)
		go func() {
			var out, errOut bytes.Buffer
			a.stdout = &out
			a.log = slog.New(slog.NewTextHandler(&errOut, nil))
			if code := cli.Run(ctx, a.rootCmd(), args, &out, &errOut); code != 0 {
				done <- fmt.Sprintf("partflip %v: exit %d: %s", args, code, errOut.String())
			}
			close(done)
		}()
		return done
	}
	read, secondWaits, secondEnded := make(chan struct{}), make(chan struct{}), make(chan struct{})
	first := &app{opts: DefaultOptions(), held: func() {
		close(read)
		select {
		case <-secondWaits:
		case <-secondEnded:
		case <-time.After(20 * time.Second):
		}
	}}
	firstDone := run(first, "mark-successful-boot", "--disk", img, "--booted", "A")
	<-read
	second := run(&app{opts: DefaultOptions(), lockWaiting: func() { close(secondWaits) }}, "mark-inactive-valid", "--disk", img, "--booted", "A")
	if msg, ok := <-second; ok {
		t.Error(msg)
	}
	close(secondEnded)
	if msg, ok := <-firstDone; ok {
		t.Error(msg)
	}
	s := status(t, "--disk", img, "--booted", "A")
	if !s.A.Successful || s.B.TriesLeft != 1 {
		t.Errorf("state after two concurrent transitions = A %+v, B %+v; want A successful and B with one try", s.A, s.B)
	}
}
