// Package growth makes a disk that was written from a smaller image use
// the whole disk, on first boot: it moves the backup GPT to the end of the
// disk (repairing a table with only one usable copy on the way), grows the
// DATA partition to the last usable block, tells the kernel the
// partition's new size (BLKPG_RESIZE_PARTITION: BLKRRPART fails on a disk
// whose partitions are in use) and grows the mounted ext4 file system on
// it online (EXT4_IOC_RESIZE_FS, as systemd-growfs does).
//
// Each step checks its own condition, so running the steps again on a
// grown disk changes nothing. The order keeps the invariants that make a
// power cut at any point harmless: at least one valid copy of the GPT
// (gpt.Write writes the backup, syncs, then the primary), partitions that
// only ever grow, and a file system never larger than the partition the
// kernel knows (the file system grows last). The next boot finishes the
// job. docs/disk-layout.md has the whole argument.
//
// The initramfs (sources/initramfs) runs the steps: it has read every GPT
// and mounts DATA before systemd starts, and it logs a failure of growth
// on the console and boots on.
package growth
