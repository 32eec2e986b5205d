// Package bootstate holds the A/B bank state that decides which bank the
// bootloader starts: per bank a priority, a count of tries left and a
// successful flag, with the transitions of Bottlerocket's signpost as pure
// functions.
//
// The state lives in one 512-byte GRUB environment block (the file
// EFI/BOOT/grubenv on the EFI system partition). GRUB reads it with load_env
// and spends a try with save_env; the host rewrites the same sector with one
// aligned 512-byte write followed by fsync. A single-sector write is atomic
// on power loss, so the block always holds either the old or the new state.
// See docs/boot.md for the design.
package bootstate
