// Package gpt reads and writes GUID partition tables (UEFI 2.x, chapter 5)
// on disk images and block devices with 512- or 4096-byte logical blocks.
// It is the one GPT reader of the tree: the image build, the initramfs, the
// boot-state flipper, the ready agent and first-boot disk growth use it.
//
// The writer produces a protective MBR, a primary header with its 128-entry
// array from LBA 1 and the backup array and header in the last blocks. It
// touches no other byte: partition contents and the MBR boot code (bytes
// 0–439 of LBA 0, where grub-bios-setup puts boot.img) are left alone, so a
// table can be (re)written into an existing sparse image file. It writes
// the backup copy, syncs, then the primary, so that a write cut short
// leaves one usable copy (see Write).
//
// The reader checks every field the writer sets (signatures, sizes, CRC32s,
// LBAs, entry ranges) and names the bad field in its error, so an on-host
// agent can refuse to flip partitions on a disk it does not understand.
// Two departures from "exactly as written" are accepted and reported: the
// backup copy may sit before the disk's last block (an image written to a
// larger disk; Table.BackupMisplaced), and a disk with only one usable copy
// yields a *OneCopyError carrying that copy, for the callers that repair it.
//
// GUIDs are held in their textual byte order; the mixed-endian on-disk
// encoding is handled here. DeriveGUID makes deterministic GUIDs from a
// caller's seed so that image builds are reproducible.
package gpt
