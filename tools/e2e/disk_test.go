package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/bootstate"
	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/gpt"
	"github.com/petrel-os/petrel/tools/qemu"
)

// copyDisk copies a disk image into the test's directory, keeping holes.
func copyDisk(t *testing.T, src, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), name)
	if out, err := exec.Command("cp", "--sparse=always", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy image: %v\n%s", err, out)
	}
	return dst
}

// consoleText joins the VM's console lines.
func consoleText(vm *qemu.VM) string {
	var b strings.Builder
	for _, l := range vm.Lines() {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}

// mustMatch returns the submatches of re in console or fails the test.
func mustMatch(t *testing.T, console, re string) []string {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(console)
	if m == nil {
		t.Fatalf("console lacks %q", re)
	}
	return m
}

// dumpe2fs returns the numeric fields of dumpe2fs -h for the file system
// at byte offset of img.
func dumpe2fs(t *testing.T, img string, offset int64) map[string]uint64 {
	t.Helper()
	out := runOK(t, "dumpe2fs", "-h", fmt.Sprintf("%s?offset=%d", img, offset))
	if offset == 0 {
		out = runOK(t, "dumpe2fs", "-h", img)
	}
	fields := map[string]uint64{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Za-z ]+):\s+(\d+)$`).FindAllStringSubmatch(out, -1) {
		n, _ := strconv.ParseUint(m[2], 10, 64)
		fields[m[1]] = n
	}
	for _, k := range []string{"Block count", "Block size", "Blocks per group", "Inode blocks per group", "Reserved GDT blocks"} {
		if _, ok := fields[k]; !ok {
			t.Fatalf("dumpe2fs -h shows no %q:\n%s", k, out)
		}
	}
	return fields
}

// TestDiskGrowth boots the image written to a disk 6 GiB larger than the
// image. The first boot must reach host ready on bank A, move the backup
// GPT to the end of the disk, grow DATA to the last usable block and its
// ext4 file system online; read from the build host afterwards, the disk
// must pass sgdisk -v, the file system must cover the partition and the
// grubenv must say bank A is successful. A second boot must grow nothing.
func TestDiskGrowth(t *testing.T) {
	src, _ := builtImage(t)
	img := copyDisk(t, src, "grown.img")
	st, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	const extra = 6 << 30
	if err := os.Truncate(img, st.Size()+extra); err != nil {
		t.Fatal(err)
	}
	before, err := gpt.ReadFile(t.Context(), img)
	if err != nil {
		t.Fatalf("read the image's table on the larger disk: %v", err)
	}
	dataBefore, ok := before.ByGUID(disklayout.DataPreferredGUID)
	if !ok || !before.BackupMisplaced() {
		t.Fatalf("image table = %+v; want DATA and the backup GPT before the end of the larger disk", before)
	}

	vm, line := bootUntilReady(t, qemu.Options{Image: img, Firmware: qemu.UEFI})
	if !strings.HasSuffix(line.Text, "bank A") {
		t.Errorf("ready line %q does not name bank A", line.Text)
	}
	console := consoleText(vm)
	vm.Stop()
	dataDev := mustMatch(t, console, `petrel-init: mounted PARTUUID=`+disklayout.DataPreferredGUID.String()+` \((/dev/vda\d+)\) on /local \(ext4\)`)[1]
	moved := mustMatch(t, console, `petrel-init: moved the backup GPT of /dev/vda from LBA (\d+) to LBA (\d+), the end of the disk \(6144 MiB more than the image\)`)
	grewPart := mustMatch(t, console, `petrel-init: grew DATA \(`+dataDev+`\) from 1024 MiB to ([\d.]+ MiB)`)
	grewFS := mustMatch(t, console, `petrel-init: grew the file system on /local \(`+dataDev+`\) from 1024 MiB to ([\d.]+ MiB)`)
	t.Logf("first boot: %s; %s; %s; growth took %s of the boot", moved[0], grewPart[0], grewFS[0], growthTime(vm))
	if strings.Contains(console, "could not") {
		t.Errorf("console reports a failed step:\n%s", regexp.MustCompile(`(?m)^.*could not.*$`).FindAllString(console, -1))
	}

	// The disk, read from the build host.
	out, err := exec.Command("sgdisk", "-v", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No problems found") {
		t.Errorf("sgdisk -v: %v\n%s", err, out)
	}
	after, err := gpt.ReadFile(t.Context(), img)
	if err != nil {
		t.Fatalf("read the grown table: %v", err)
	}
	last := uint64(st.Size()+extra)/gpt.SectorSize - 1
	if after.BackupMisplaced() || after.BackupLBA != last || moved[1] != fmt.Sprint(before.BackupLBA) || moved[2] != fmt.Sprint(last) {
		t.Errorf("backup GPT at LBA %d of %d (console: %s), want the last LBA %d", after.BackupLBA, after.LastLBA, moved[0], last)
	}
	data, _ := after.ByGUID(disklayout.DataPreferredGUID)
	if data.FirstLBA != dataBefore.FirstLBA || data.LastLBA != after.LastUsableLBA {
		t.Errorf("DATA is LBA %d..%d, want %d..%d (the last usable LBA)", data.FirstLBA, data.LastLBA, dataBefore.FirstLBA, after.LastUsableLBA)
	}
	off, partBytes := after.Bytes(data)
	if want := mibText(partBytes); grewPart[1] != want {
		t.Errorf("console says DATA grew to %s, the table says %s", grewPart[1], want)
	}
	// The VM was killed: on a copy of DATA, replay the journal as the next
	// mount would, and make sure e2fsck finds nothing else wrong than the
	// free block and inode counts, which ext4 writes to the superblock only
	// when it is unmounted. (e2fsck cannot reopen "disk?offset=N" after a
	// journal replay.)
	part := extract(t, img, off, partBytes)
	fsck, err := exec.Command("e2fsck", "-fy", part).CombinedOutput()
	rest := regexp.MustCompile(`Free (blocks|inodes) count wrong \(\d+, counted=\d+\)\.\nFix\? yes\n`).ReplaceAll(fsck, nil)
	if code := exitCode(err); code > 1 || regexp.MustCompile(`(?i)fix\?|clear\?|salvage|corrupt`).Match(rest) {
		t.Errorf("e2fsck -fy of DATA after the boot: exit %d\n%s", code, fsck)
	}
	fs := dumpe2fs(t, part, 0)
	bs, blocks := fs["Block size"], fs["Block count"]
	partBlocks := uint64(partBytes) / bs
	// The kernel's online resize fills the partition, less a last block
	// group too small for its metadata (then it stops at a group start).
	if short := partBlocks - blocks; blocks > partBlocks ||
		short > 0 && (blocks%fs["Blocks per group"] != 0 || short > fs["Inode blocks per group"]+fs["Reserved GDT blocks"]+8) {
		t.Errorf("file system: %d blocks of %d bytes in a partition of %d blocks; want it to cover the partition", blocks, bs, partBlocks)
	}
	if want := mibText(int64(blocks * bs)); grewFS[1] != want {
		t.Errorf("console says the file system grew to %s, dumpe2fs says %s", grewFS[1], want)
	}
	checkBankA(t, img, after)

	// Second boot: nothing left to grow.
	vm2, line2 := bootUntilReady(t, qemu.Options{Image: img, Firmware: qemu.UEFI})
	if !strings.HasSuffix(line2.Text, "bank A") {
		t.Errorf("second boot: ready line %q does not name bank A", line2.Text)
	}
	console2 := consoleText(vm2)
	vm2.Stop()
	mustMatch(t, console2, `petrel-init: nothing to grow: DATA \(`+dataDev+`, [\d.]+ MiB\) ends at the end of its disk and its file system on /local \([\d.]+ MiB\) fills it`)
	for _, re := range []string{`petrel-init: moved the backup GPT`, `petrel-init: grew `, `petrel-init: told the kernel`, `EXT4-fs \(vda\d+\): resizing filesystem`} {
		if m := regexp.MustCompile(re + `.*`).FindString(console2); m != "" {
			t.Errorf("second boot: console shows %q", m)
		}
	}
	again, err := gpt.ReadFile(t.Context(), img)
	if err != nil || again.BackupLBA != after.BackupLBA || fmt.Sprint(again.Partitions) != fmt.Sprint(after.Partitions) {
		t.Errorf("table after the second boot = %+v, %v; want it unchanged", again, err)
	}
}

// mibText formats bytes as the initramfs does on the console.
func mibText(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
}

// growthTime is the time between the console line before first-boot
// growth (the root device) and the line after it (the file system grown).
func growthTime(vm *qemu.VM) time.Duration {
	var from, to time.Duration
	for _, l := range vm.Lines() {
		switch {
		case strings.Contains(l.Text, "petrel-init: boot disk "):
			from = l.At
		case strings.Contains(l.Text, "petrel-init: grew the file system"), strings.Contains(l.Text, "petrel-init: nothing to grow"):
			to = l.At
		}
	}
	return to - from
}

// exitCode returns the exit status of a finished command's error.
func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// checkBankA reads the grubenv on the image's ESP: bank A must be
// successful and chosen next.
func checkBankA(t *testing.T, img string, table *gpt.Table) {
	t.Helper()
	esp, ok := table.ByName("EFI-SYSTEM")
	if !ok {
		t.Fatal("no EFI-SYSTEM partition")
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	espOff, _ := table.Bytes(esp)
	envOff, err := bootstate.LocateEnv(t.Context(), f, espOff)
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := bootstate.Read(t.Context(), f, envOff)
	if err != nil {
		t.Fatal(err)
	}
	if !s.A.Successful || bootstate.Next(s).Bank != bootstate.BankA {
		t.Errorf("grubenv = %+v; want bank A successful and next", s)
	}
}

// TestDiskDuplicateDataGUID boots with a disk ahead of the OS disk whose
// partition carries DATA's fixed GUID and an ext4 file system: /local must
// be the boot disk's DATA partition, not the first disk's (which a lookup
// in disk name order would take).
func TestDiskDuplicateDataGUID(t *testing.T) {
	src, _ := builtImage(t)
	dup := filepath.Join(t.TempDir(), "dup.img")
	if err := os.WriteFile(dup, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(dup, 64<<20); err != nil {
		t.Fatal(err)
	}
	runOK(t, "sgdisk", "-o", "-n", "1:2048:0", "-t", "1:"+disklayout.TypeData.String(), "-u", "1:"+disklayout.DataPreferredGUID.String(), dup)
	runOK(t, "mkfs.ext4", "-q", "-F", "-L", "IMPOSTOR", "-E", "offset=1048576", dup, "60M")

	// The impostor is the first disk (vda), the OS disk the second (vdb):
	// the firmware finds no ESP on vda and boots vdb.
	vm, line := bootUntilReady(t, qemu.Options{Image: dup, DataImage: src, Snapshot: true, Firmware: qemu.UEFI})
	if !strings.HasSuffix(line.Text, "bank A") {
		t.Errorf("ready line %q does not name bank A", line.Text)
	}
	console := consoleText(vm)
	mustMatch(t, console, `petrel-init: boot disk /dev/vdb \(holds the verity root's partitions\)`)
	mustMatch(t, console, `petrel-init: mounted PARTUUID=`+disklayout.DataPreferredGUID.String()+` \(/dev/vdb\d+\) on /local \(ext4\)`)
	for _, l := range regexp.MustCompile(`(?m)^petrel-init: (grew|nothing to grow|moved|could not).*$`).FindAllString(console, -1) {
		t.Log(l)
	}
}
