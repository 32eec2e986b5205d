// Package e2e holds Petrel's end-to-end tests: they build the default
// variant with `buildctl make` and boot it in QEMU (UEFI and BIOS), check
// that the root is the verified dm-verity device, and check that a host falls
// back to its good bank by itself when a new bank fails to boot. The
// settings tests check that the kernel lockdown setting takes effect at
// boot and drive a running host through the API bridge (`buildctl boot
// --api-socket`) with apiclient: settings applied live, bad values refused.
package e2e
