// Package fat reads FAT12, FAT16 and FAT32 filesystems without mounting
// them. FindFile tells where a contiguous file's bytes lie on disk: the
// on-host A/B flipper (sources/bootstate) uses it to locate the GRUB
// environment block on the EFI system partition and rewrite that one
// sector in place. FS.ReadFile reads a whole file by following its
// cluster chain, as the config-drive reader of early-boot-config does.
//
// Only reading is implemented: the boot sector (BPB), the allocation
// table and directories with long (VFAT) and short names. Every structure
// read from disk is bounds-checked, so a damaged or hostile image gives an
// error, never a panic or an endless loop.
package fat
