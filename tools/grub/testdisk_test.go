package grub

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/testkit"
)

// testDisk is a small GPT disk in the in-place layout (partition numbers as
// in DefaultLayout) with tiny placeholder ROOT/HASH/RESERVED partitions.
type testDisk struct {
	path      string
	envOffset int64 // absolute offset of the grubenv sector
}

// Partition plan of the test disk, in 512-byte sectors.
type testPart struct {
	num        int
	start, end int64
	code, name string
	guid       string
}

func testParts() []testPart {
	const boot = "6B636168-7420-6568-2070-6C616E657421"
	return []testPart{
		{1, 2048, 10239, "EF02", "BIOS-BOOT", "11111111-0000-4000-8000-000000000001"},
		{2, 10240, 18431, "EF00", "EFI-SYSTEM", "11111111-0000-4000-8000-000000000002"},
		{3, 18432, 26623, boot, "BOOT-A", "11111111-0000-4000-8000-00000000000A"},
		{4, 26624, 28671, "8300", "ROOT-A", "11111111-0000-4000-8000-000000000004"},
		{5, 28672, 30719, "8300", "HASH-A", "11111111-0000-4000-8000-000000000005"},
		{6, 30720, 32767, "8300", "RESERVED-A", "11111111-0000-4000-8000-000000000006"},
		{7, 32768, 34815, "8300", "EFI-BACKUP", "11111111-0000-4000-8000-000000000007"},
		{8, 34816, 43007, boot, "BOOT-B", "11111111-0000-4000-8000-00000000000B"},
		{9, 43008, 45055, "8300", "ROOT-B", "11111111-0000-4000-8000-000000000009"},
		{10, 45056, 47103, "8300", "HASH-B", "11111111-0000-4000-8000-000000000010"},
	}
}

// buildTestDisk writes a disk with BOOTX64.EFI and the grubenv on the ESP,
// BIOS GRUB installed, and a grub.cfg on BOOT-A/BOOT-B that prints
// "PETREL-BANK X <boot_uuid>" and powers off.
func buildTestDisk(t *testing.T, efi []byte, bios BIOSImages, initial bootstate.State) testDisk {
	t.Helper()

	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(disk, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(disk, 24<<20); err != nil {
		t.Fatal(err)
	}
	args := []string{"-o", "-U", "11111111-0000-4000-8000-0000000000FF"}
	for _, p := range testParts() {
		args = append(args,
			fmt.Sprintf("-n%d:%d:%d", p.num, p.start, p.end),
			fmt.Sprintf("-t%d:%s", p.num, p.code),
			fmt.Sprintf("-c%d:%s", p.num, p.name),
			fmt.Sprintf("-u%d:%s", p.num, p.guid))
	}
	testkit.Run(t, "sgdisk", append(args, disk)...)

	// ESP: FAT with BOOTX64.EFI and the one-sector grubenv.
	parts := testParts()
	esp := filepath.Join(dir, "esp.img")
	espKiB := (parts[1].end - parts[1].start + 1) / 2
	testkit.Run(t, "mkfs.vfat", "-C", "-n", "EFI-SYSTEM", "-i", "12345678", esp, fmt.Sprint(espKiB))
	mt := []string{"MTOOLS_SKIP_CHECK=1", "SOURCE_DATE_EPOCH=1700000000"}
	testkit.RunEnv(t, mt, "mmd", "-i", esp, "::/EFI", "::/EFI/BOOT")
	writeFile(t, filepath.Join(dir, "BOOTX64.EFI"), efi)
	env, err := initial.Env()
	if err != nil {
		t.Fatal(err)
	}
	block, err := env.Encode()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "grubenv"), block)
	testkit.RunEnv(t, mt, "mcopy", "-i", esp, filepath.Join(dir, "BOOTX64.EFI"), filepath.Join(dir, "grubenv"), "::/EFI/BOOT/")
	placeFile(t, disk, esp, parts[1].start)

	for _, p := range []testPart{parts[2], parts[7]} {
		bank := strings.TrimPrefix(p.name, "BOOT-")
		root := filepath.Join(dir, "boot-"+bank)
		writeFile(t, filepath.Join(root, "grub", "grub.cfg"),
			[]byte("echo \"PETREL-BANK "+bank+" $boot_uuid\"\nhalt\n"))
		img := filepath.Join(dir, "boot-"+bank+".img")
		kib := (p.end - p.start + 1) / 2
		testkit.RunEnv(t, []string{"E2FSPROGS_FAKE_TIME=1700000000"}, "mkfs.ext4", "-q", "-F", "-L", p.name, "-O", "^has_journal", "-d", root, img, fmt.Sprintf("%dk", kib))
		placeFile(t, disk, img, p.start)
	}

	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := InstallBIOS(context.Background(), f, bios, BIOSPartition{StartLBA: uint64(parts[0].start), Sectors: uint64(parts[0].end - parts[0].start + 1)}); err != nil {
		t.Fatalf("InstallBIOS: %v", err)
	}
	off, err := bootstate.LocateEnv(context.Background(), f, parts[1].start*512)
	if err != nil {
		t.Fatalf("LocateEnv: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return testDisk{path: disk, envOffset: off}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// placeFile copies the file src into disk at the given sector.
func placeFile(t *testing.T, disk, src string, sector int64) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, sector*512); err != nil {
		t.Fatal(err)
	}
}

// readState reads the grubenv sector of the test disk.
func (d testDisk) readState(t *testing.T) (bootstate.State, []byte) {
	t.Helper()
	f, err := os.Open(d.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, _, err := bootstate.Read(context.Background(), f, d.envOffset)
	if err != nil {
		t.Fatalf("read boot state: %v", err)
	}
	raw := make([]byte, bootstate.BlockSize)
	if _, err := f.ReadAt(raw, d.envOffset); err != nil {
		t.Fatal(err)
	}
	return s, raw
}

type firmware int

const (
	uefi firmware = iota
	seabios
)

func (fw firmware) String() string {
	if fw == uefi {
		return "OVMF"
	}
	return "SeaBIOS"
}

// boot starts QEMU on the disk under TCG and returns the serial console
// once GRUB printed the PETREL-BANK line (the bank's grub.cfg then halts).
func boot(t *testing.T, fw firmware, disk string) string {
	t.Helper()
	qemu := testkit.Tool(t, "qemu-system-x86_64")
	args := []string{"-m", "256", "-nodefaults", "-no-user-config", "-serial", "stdio", "-display", "none", "-no-reboot",
		"-drive", "file=" + disk + ",format=raw,if=virtio"}
	if fw == uefi {
		code, vars := testkit.Tool(t, "/usr/share/OVMF/OVMF_CODE.fd"), testkit.Tool(t, "/usr/share/OVMF/OVMF_VARS.fd")
		v, err := os.ReadFile(vars)
		if err != nil {
			t.Fatalf("read %s (Debian package ovmf): %v", vars, err)
		}
		varsCopy := filepath.Join(t.TempDir(), "vars.fd")
		writeFile(t, varsCopy, v)
		args = append(args, "-drive", "if=pflash,format=raw,readonly=on,file="+code, "-drive", "if=pflash,format=raw,file="+varsCopy)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start qemu: %v", err)
	}
	var console strings.Builder
	seen := false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		console.WriteString(line + "\n")
		if strings.Contains(line, "PETREL-BANK") {
			seen = true
			break
		}
	}
	if seen {
		// The bank's grub.cfg halts; give it a moment, then make sure.
		done := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, stdout); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	werr := cmd.Wait()
	if !seen {
		t.Fatalf("%s boot: no PETREL-BANK line (qemu: %v)\nconsole:\n%s\nstderr:\n%s", fw, werr, console.String(), stderr.String())
	}
	return console.String()
}

func sleepSecond() { time.Sleep(1100 * time.Millisecond) }
