// Package e2e holds Petrel's end-to-end tests: they build the default
// variant with `buildctl make` and boot it in QEMU (UEFI and BIOS), check
// that the root is the verified dm-verity device, and check that a host falls
// back to its good bank by itself when a new bank fails to boot.
package e2e
