// Package buildctl is the command-line interface of Petrel's build system:
// it builds packages, kits and variant images, and boots them in QEMU.
package buildctl
