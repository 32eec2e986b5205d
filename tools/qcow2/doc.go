// Package qcow2 converts raw disk images to qcow2 (version 3) files for QEMU
// and KVM users. It runs `qemu-img convert` from the qemu-utils package: a
// plain qcow2 copy takes well under a second for a 2 GiB image (see
// docs/performance.md), so a Go writer would buy nothing but code to keep.
package qcow2
