// Package image assembles a variant's disk image from its RPMs: it installs
// the package closure into a staging root, writes os-release and the
// application inventory, builds the EROFS (or ext4) root, its dm-verity hash
// tree, the BOOT partition with the kernel, the Go initramfs and the bank's
// GRUB configuration, the EFI system partition with GRUB and the boot-state
// sector, GRUB's BIOS core image, PRIVATE and DATA, lays them out on the A/B
// partition plan, and writes the update images and the variant's image
// format. Same inputs give byte-identical outputs.
package image
