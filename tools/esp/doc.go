// Package esp writes the EFI system partition: a FAT16 or FAT32
// filesystem, chosen by size, holding a fixed set of files such as
// EFI/BOOT/BOOTX64.EFI and the GRUB environment block EFI/BOOT/grubenv.
//
// The writer is its own minimal FAT formatter rather than mkfs.vfat plus
// mtools, for two reasons: the output is byte-reproducible (fixed volume
// ID, timestamps from the caller's epoch, files in sorted order), and
// every file is stored in consecutive clusters at a known offset. A file
// of at most one sector (the 512-byte grubenv) therefore lies in exactly
// one sector-aligned 512-byte sector, which an on-host agent can rewrite
// atomically; Result tells the builder where, and sources/fat.FindFile
// finds it again at run time.
package esp
