// Package initrd builds Petrel's initramfs at image-build time: a
// reproducible, compressed cpio (newc) archive holding the static /init
// (cmd/petrel-init), /etc/modules.order and the kernel modules needed to
// reach a dm-verity root, with their dependency closure worked out from the
// modules' own .modinfo sections (Debian's kernel package ships no
// modules.dep; depmod runs only on installation).
package initrd
