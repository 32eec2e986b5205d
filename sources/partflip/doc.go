// Package partflip is the host side of Petrel's A/B boot selection, the
// counterpart of Bottlerocket's signpost: it shows the state of both banks
// and applies the update flow's transitions (mark-successful-boot,
// clear-inactive, mark-inactive-valid, upgrade-to-inactive, cancel-upgrade,
// rollback-to-inactive) to the grubenv block on the EFI system partition.
//
// The grubenv block (sources/bootstate) is the only state the bootloader
// reads; GPT attribute bits are not used. Banks are the first (A) and second
// (B) partitions with the BOOT type GUID; the booted bank is the one whose
// PARTUUID the kernel command line's dm-verity table names. Package
// bootdisk finds the OS disk and the booted bank.
package partflip
