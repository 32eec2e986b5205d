package esp_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/disklayout"
	"github.com/petrel-os/petrel/sources/fat"
	"github.com/petrel-os/petrel/sources/gpt"
	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/esp"
)

// grubScript is embedded into a stock GRUB EFI image: it reads grubenv
// from the ESP the firmware loaded it from, prints it, saves a new value
// and powers off.
const grubScript = `set envfile=($root)/EFI/BOOT/grubenv
load_env -f $envfile
echo "PETREL-ESP-ENV boot_slot=$boot_slot"
set boot_slot=B
save_env -f $envfile boot_slot
echo "PETREL-ESP-SAVED"
halt
`

// TestBootWithOVMFAndGRUB boots the ESP under QEMU with OVMF and stock
// GRUB: the firmware must find EFI/BOOT/BOOTX64.EFI on our FAT, GRUB must
// read grubenv through its long name and save_env must rewrite it in the
// one sector FindFile reports.
func TestBootWithOVMFAndGRUB(t *testing.T) {
	ovmfCode, ovmfVars := testkit.Tool(t, "/usr/share/OVMF/OVMF_CODE.fd"), testkit.Tool(t, "/usr/share/OVMF/OVMF_VARS.fd")
	testkit.Tool(t, "/usr/lib/grub/x86_64-efi/linux.mod")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "embed.cfg")
	if err := os.WriteFile(cfg, []byte(grubScript), 0o644); err != nil {
		t.Fatal(err)
	}
	efiBin := filepath.Join(dir, "BOOTX64.EFI")
	testkit.Run(t, "grub-mkimage", "-O", "x86_64-efi", "-o", efiBin, "-p", "/EFI/BOOT", "-c", cfg,
		"fat", "part_gpt", "loadenv", "echo", "halt", "test")
	bootx64, err := os.ReadFile(efiBin)
	if err != nil {
		t.Fatal(err)
	}

	l, err := disklayout.Plan(disklayout.Options{OSImageSizeGiB: 2, DataImageSizeGiB: 1, InPlaceUpdates: true, LabelPrefix: "PETREL"})
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "os.img")
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(l.OSDisk.SizeBytes); err != nil {
		t.Fatal(err)
	}
	if err := gpt.Write(ctx, f, l.OSDisk.SizeBytes, l.OSDisk.GPT([]byte("seed"))); err != nil {
		t.Fatal(err)
	}
	efi, _ := l.OSDisk.Partition(disklayout.KeyEFIA)
	env := []byte("# GRUB Environment Block\nboot_slot=A\n")
	env = append(env, bytes.Repeat([]byte("#"), 512-len(env))...)
	if _, err := esp.Write(ctx, f, efi.OffsetBytes(), efi.SizeBytes(), []esp.File{
		{Path: "EFI/BOOT/BOOTX64.EFI", Data: bootx64},
		{Path: "EFI/BOOT/grubenv", Data: env},
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	vars := filepath.Join(dir, "vars.fd")
	v, err := os.ReadFile(ovmfVars)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vars, v, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, testkit.Tool(t, "qemu-system-x86_64"), "-machine", "q35", "-accel", "tcg", "-m", "256", "-nodefaults",
		"-display", "none", "-serial", "stdio", "-no-reboot",
		"-drive", "if=pflash,format=raw,readonly=on,file="+ovmfCode,
		"-drive", "if=pflash,format=raw,file="+vars,
		"-drive", "file="+disk+",format=raw,if=virtio")
	out, err := cmd.CombinedOutput()
	serial := string(out)
	if err != nil || !strings.Contains(serial, "PETREL-ESP-ENV boot_slot=A") || !strings.Contains(serial, "PETREL-ESP-SAVED") {
		t.Fatalf("boot: %v; serial output lacks the GRUB markers:\n%s", err, tail(serial, 3000))
	}
	off, size, err := fat.FindFile(f, efi.OffsetBytes(), "EFI/BOOT/grubenv")
	if err != nil || size != 512 {
		t.Fatalf("FindFile after boot = %d, %d, %v", off, size, err)
	}
	got := make([]byte, 512)
	if _, err := f.ReadAt(got, off); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got, []byte("boot_slot=B\n")) || !bytes.HasPrefix(got, []byte("# GRUB Environment Block\n")) {
		t.Errorf("grubenv after GRUB's save_env = %q, want boot_slot=B", got)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
