// Package initramfs is the /init program of Petrel's initramfs. It runs as
// PID 1 before the real root exists: it mounts devtmpfs, proc and sysfs,
// loads the kernel modules listed in /etc/modules.order, creates the
// device-mapper devices described by dm-mod.create= on the kernel command
// line (the dm-verity root), mounts the root read-only, mounts a tmpfs /etc
// filled from the factory copy and the petrel.mount= file systems (DATA,
// PRIVATE), switches to it and executes the real init. Any failure is printed to the console and the
// machine reboots, so that a bad boot slot counts as a failed boot.
//
// Pure parts (kernel command line parsing, GPT reading, device spec
// resolution against a sysfs tree) are portable and unit-tested; the PID 1
// engine is Linux-only.
package initramfs
