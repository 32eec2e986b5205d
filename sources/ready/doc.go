// Package ready is the last agent of a Petrel boot: petrel-ready prints one
// line to the console once the host is up,
//
//	petrel: host ready: Petrel OS 0.1.0 build 1a2b3c4, bank A
//
// naming the release (PRETTY_NAME and BUILD_ID of /usr/lib/os-release) and
// the booted A/B bank. The bank is the one whose BOOT partition's PARTUUID
// the dm-verity table on the kernel command line names
// (PARTUUID=<uuid>/PARTNROFF=n), found in the GPT of the OS disk.
//
// The line starts with Marker; `buildctl boot` waits for it on the serial
// console to know that an image booted.
package ready
