// Package fsimage builds filesystem images from directory trees without
// privileges and reproducibly: EROFS through mkfs.erofs and ext4 through
// mkfs.ext4 -d followed by a debugfs pass that pins ownership and
// timestamps. The same tree content, UUID and epoch give byte-identical
// images, even from two fresh copies of the tree made at different times
// by an unprivileged user.
//
// Images are written to a file of their own or, for ext4, straight into a
// disk image at a byte offset. A tree that does not fit gives a
// *TooSmallError naming both sizes.
package fsimage
