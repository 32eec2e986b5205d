// Package grub builds Petrel's GRUB 2.06 boot chain from stock Debian GRUB:
// the A/B selection script that picks a bank from the grubenv block on the
// EFI system partition (see sources/bootstate), the per-bank grub.cfg that
// boots the kernel with a dm-verity root, the UEFI image BOOTX64.EFI and
// the BIOS boot.img and core.img, and their installation into a disk image.
//
// Both firmware images carry the selection script in a memdisk built here
// as a reproducible tar, so the script runs under GRUB's normal-mode parser
// and the images are byte-for-byte reproducible. See docs/boot.md.
package grub
