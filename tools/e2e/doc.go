// Package e2e holds Petrel's end-to-end tests: they build the default
// variant with `buildctl make` and boot it in QEMU (UEFI and BIOS), check
// that the root is the verified dm-verity device, that a host falls back
// to its good bank by itself when a new bank fails to boot and stays on a
// good new bank, and that `buildctl boot` stops as soon as a boot cannot
// reach host ready. The bridge and settings tests drive running hosts
// through the API bridge (`buildctl boot --api-socket`; bootWithAPI and
// apiclientOK in bridge_test.go) with the normal apiclient: reads, sets, a
// reboot, settings applied live, bad values refused; the settings tests
// also check that the kernel lockdown setting takes effect at boot. The
// update test (update_test.go) builds three releases, publishes them into
// a signed repository served over HTTP and updates a host through its API
// up, across a settings migration, down again and into a release that
// cannot boot, from which the host falls back by itself.
// TestImageSBOM checks the image's SBOMs against the schemas, the
// inventory and `go list`; TestRelease runs `buildctl release --ami`
// against the in-process AWS endpoint of tools/awstest.
package e2e
