// Package fat reads FAT12, FAT16 and FAT32 filesystems far enough to find
// where a file's bytes lie on disk. The on-host A/B flipper uses it to
// locate the GRUB environment block on the EFI system partition and
// rewrite that one sector in place, without mounting the filesystem.
//
// Only what FindFile needs is implemented: the boot sector (BPB), the
// allocation table and directories with long (VFAT) and short names.
// Every structure read from disk is bounds-checked, so a damaged or
// hostile image gives an error, never a panic or an endless loop.
package fat
