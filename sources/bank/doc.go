// Package bank writes a release's images into one A/B bank of the OS disk
// and checks what landed there: the update agent's side of an in-place
// update (sources/updater), with nothing of TUF in it.
//
// Find locates a bank's BOOT, ROOT and HASH partitions in the disk's GPT
// the way the boot chain does: the bank's BOOT partition is the first (A)
// or second (B) partition of the BOOT type, and ROOT and HASH are the two
// partitions after it (the bank's grub.cfg names them PARTNROFF=1 and 2
// of BOOT's PARTUUID); their types and the ends of their labels
// (disklayout's keys, "-ROOT-B") must agree.
//
// A Writer streams each compressed image (zstd, sources/imagecodec) into
// its partition through the disk's device node (or an image file standing
// in for the disk in tests) at the partition's offset, never past its end
// (an image that does not fit is a TooLargeError and stops at the
// partition's size), with bounded memory whatever the image size. Sync
// makes the writes durable (fsync of the device: the page cache and the
// disk's cache). Check drops the written ranges from the page cache and
// reads them back from the device: the boot image against the SHA-256 of
// what was written, the root against the dm-verity root hash the caller
// trusts (sources/verity), which also covers the hash tree.
//
// The package never changes the boot state: the caller clears the bank
// before the first write and marks it valid after Check (docs/updates.md).
package bank
