// Package gpt reads and writes GUID partition tables (UEFI 2.x, chapter 5)
// on 512-byte-sector disk images and block devices.
//
// The writer produces a protective MBR, a primary header with its 128-entry
// array at LBA 1–33 and the backup array and header in the last 33 sectors.
// It touches no other byte: partition contents and the MBR boot code (bytes
// 0–439 of LBA 0, where grub-bios-setup puts boot.img) are left alone, so a
// table can be (re)written into an existing sparse image file.
//
// The reader checks every field the writer sets (signatures, sizes, CRC32s,
// LBAs, entry ranges) and names the bad field in its error, so an on-host
// agent can refuse to flip partitions on a disk it does not understand.
//
// GUIDs are held in their textual byte order; the mixed-endian on-disk
// encoding is handled here. DeriveGUID makes deterministic GUIDs from a
// caller's seed so that image builds are reproducible.
package gpt
