package grub

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
)

// Offsets inside GRUB 2.06's i386-pc boot.img and diskboot.img (the first
// sector of core.img) that InstallBIOS relies on. They come from GRUB's
// include/grub/i386/pc/boot.h and boot/i386/pc/diskboot.S and are what
// grub-bios-setup patches.
const (
	sectorSize = 512

	// bootBPBStart..bootBPBEnd is a possible BIOS parameter block, kept
	// from the disk as grub-bios-setup does (zeros on a protective MBR).
	bootBPBStart = 0x03
	bootBPBEnd   = 0x5a
	// bootKernelSector holds the little-endian 64-bit LBA of core.img's
	// first sector (diskboot.img).
	bootKernelSector = 0x5c
	// bootDriveCheck is a 2-byte short jump that skips the "use drive 0x80
	// when the BIOS passed a floppy number" workaround; grub-bios-setup
	// replaces it with two NOPs for hard disks.
	bootDriveCheck = 0x66
	// mbrKeep is where the Windows disk signature starts; from here to the
	// end of the sector (partition table and 0x55AA) the disk's own bytes
	// are kept, so the protective MBR survives.
	mbrKeep = 0x1b8

	// diskboot.img ends with its first block list entry: start LBA (u64),
	// sector count (u16) and load segment (u16). The entry before it must
	// stay zero: a zero count ends the list.
	listStart   = 0x1f4
	listLen     = 0x1fc
	listSegment = 0x1fe
	listEnd     = listStart - 12 + 8 // count field of the terminating entry
	// diskbootSegment is diskboot's default load segment (0x800 + 0x20).
	diskbootSegment = 0x820
)

// BIOSPartition is where core.img goes: the BIOS-BOOT partition, in 512-byte
// sectors (GPT partition 1 at 1 MiB, 4 MiB long in Petrel's layout).
type BIOSPartition struct {
	StartLBA uint64
	Sectors  uint64
}

// InstallBIOS writes core.img into the BIOS-BOOT partition and boot.img into
// sector 0 of disk, patched the way grub-bios-setup patches them: boot.img
// learns core.img's LBA; diskboot's block list covers the rest of core.img,
// which is contiguous. Bytes 0x1b8..0x1ff of the existing sector 0 (disk
// signature, protective MBR partition table, boot signature) are kept.
// grub-bios-setup itself is not used: it wants a device map and probes the
// disk, while this needs only the image file.
func InstallBIOS(ctx context.Context, disk interface {
	io.ReaderAt
	io.WriterAt
}, imgs BIOSImages, part BIOSPartition) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(imgs.Boot) != sectorSize {
		return fmt.Errorf("install BIOS boot code: boot.img is %d bytes, want %d", len(imgs.Boot), sectorSize)
	}
	nsec := (uint64(len(imgs.Core)) + sectorSize - 1) / sectorSize
	if nsec < 2 || nsec > part.Sectors || nsec-1 > 0xffff {
		return fmt.Errorf("install BIOS boot code: core.img needs %d sectors, partition has %d: %w", nsec, part.Sectors, errTooBig)
	}
	if part.StartLBA == 0 {
		return fmt.Errorf("install BIOS boot code: BIOS boot partition cannot start at LBA 0")
	}
	core := make([]byte, nsec*sectorSize)
	copy(core, imgs.Core)
	if got := binary.LittleEndian.Uint16(core[listSegment:]); got != diskbootSegment ||
		binary.LittleEndian.Uint64(core[listStart:]) != 2 || binary.LittleEndian.Uint16(core[listEnd:]) != 0 {
		return fmt.Errorf("install BIOS boot code: core.img does not start with GRUB 2.06 diskboot.img (block list segment %#x)", got)
	}
	binary.LittleEndian.PutUint64(core[listStart:], part.StartLBA+1)
	binary.LittleEndian.PutUint16(core[listLen:], uint16(nsec-1))

	mbr := make([]byte, sectorSize)
	if _, err := disk.ReadAt(mbr, 0); err != nil {
		return fmt.Errorf("read MBR: %w", err)
	}
	if !bytes.Equal(mbr[0x1fe:], []byte{0x55, 0xaa}) {
		return fmt.Errorf("install BIOS boot code: sector 0 has no 0x55AA signature; write the GPT (with its protective MBR) first")
	}
	boot := append([]byte(nil), imgs.Boot...)
	copy(boot[bootBPBStart:bootBPBEnd], mbr[bootBPBStart:bootBPBEnd])
	boot[bootDriveCheck], boot[bootDriveCheck+1] = 0x90, 0x90
	binary.LittleEndian.PutUint64(boot[bootKernelSector:], part.StartLBA)
	copy(boot[mbrKeep:], mbr[mbrKeep:])

	if _, err := disk.WriteAt(core, int64(part.StartLBA)*sectorSize); err != nil {
		return fmt.Errorf("write core.img at LBA %d: %w", part.StartLBA, err)
	}
	if _, err := disk.WriteAt(boot, 0); err != nil {
		return fmt.Errorf("write boot.img to the MBR: %w", err)
	}
	return nil
}
