package grub

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

// TestInstallBIOSPatches checks the bytes InstallBIOS writes on a disk with a
// protective MBR made by sgdisk.
func TestInstallBIOSPatches(t *testing.T) {
	t.Parallel()
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, "sgdisk", "-o", "-n1:2048:10239", "-t1:EF02", disk)
	orig, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := Builder{}.BIOS(context.Background(), DefaultLayout())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	part := BIOSPartition{StartLBA: 2048, Sectors: 8192}
	if err := InstallBIOS(context.Background(), f, imgs, part); err != nil {
		t.Fatalf("InstallBIOS: %v", err)
	}
	got, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	mbr := got[:512]
	if !bytes.Equal(mbr[mbrKeep:], orig[mbrKeep:512]) {
		t.Error("protective MBR partition table or signature changed")
	}
	if lba := binary.LittleEndian.Uint64(mbr[bootKernelSector:]); lba != 2048 {
		t.Errorf("boot.img kernel sector = %d, want 2048", lba)
	}
	if !bytes.Equal(mbr[bootDriveCheck:bootDriveCheck+2], []byte{0x90, 0x90}) {
		t.Error("drive check jump not replaced with NOPs")
	}
	if !bytes.Equal(mbr[bootDriveCheck+2:mbrKeep], imgs.Boot[bootDriveCheck+2:mbrKeep]) {
		t.Error("boot.img code changed")
	}
	core := got[2048*512:]
	nsec := (len(imgs.Core) + 511) / 512
	if s := binary.LittleEndian.Uint64(core[listStart:]); s != 2049 {
		t.Errorf("diskboot block list start = %d, want 2049", s)
	}
	if n := binary.LittleEndian.Uint16(core[listLen:]); int(n) != nsec-1 {
		t.Errorf("diskboot block list length = %d, want %d", n, nsec-1)
	}
	if !bytes.Equal(core[512:len(imgs.Core)], imgs.Core[512:]) {
		t.Error("core.img body not copied verbatim")
	}
	// The GPT itself is untouched.
	if !bytes.Equal(got[512:2048*512], orig[512:2048*512]) {
		t.Error("GPT header or entries changed")
	}
	// Too small a partition is refused.
	if err := InstallBIOS(context.Background(), f, imgs, BIOSPartition{StartLBA: 2048, Sectors: 8}); !errors.Is(err, errTooBig) {
		t.Errorf("InstallBIOS into 8 sectors = %v, want errTooBig", err)
	}
}

// TestImagesReproducible builds both images twice, a second apart: the
// memdisk tar has fixed headers, so the output must be identical.
func TestImagesReproducible(t *testing.T) {
	ctx := context.Background()
	var b Builder
	efi1, err := b.EFI(ctx, DefaultLayout())
	if err != nil {
		t.Fatal(err)
	}
	bios1, err := b.BIOS(ctx, DefaultLayout())
	if err != nil {
		t.Fatal(err)
	}
	// mtimes of temporary files change with the clock; wait past a second.
	sleepSecond()
	efi2, err := b.EFI(ctx, DefaultLayout())
	if err != nil {
		t.Fatal(err)
	}
	bios2, err := b.BIOS(ctx, DefaultLayout())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(efi1, efi2) {
		t.Error("BOOTX64.EFI differs between two builds")
	}
	if !bytes.Equal(bios1.Core, bios2.Core) {
		t.Error("core.img differs between two builds")
	}
	other := DefaultLayout()
	other.BootPartitionB = 9
	efi3, err := b.EFI(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(efi1, efi3) {
		t.Error("BOOTX64.EFI does not change with the layout; is the script embedded?")
	}
}
