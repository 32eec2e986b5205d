// Package initramfs is the /init program of Petrel's initramfs. It runs as
// PID 1 before the real root exists: it mounts devtmpfs, proc and sysfs,
// loads the kernel modules listed in /etc/modules.order, creates the one
// read-only dm-verity device described by dm-mod.create= on the kernel
// command line and mounts it, and only it, read-only as the root. It then
// loads the SELinux policy, mounts a tmpfs /etc filled from the factory
// copy and the petrel.mount= file systems (DATA, PRIVATE), grows DATA on a
// disk larger than the image, labels DATA and PRIVATE of a host from
// before SELinux (relabel, by HostPath), switches to the new root and
// executes the real init. Any fatal failure is
// printed to the console and the machine reboots, so that a bad boot slot
// counts as a failed boot; a failure to grow DATA is printed and the boot
// goes on.
//
// Pure parts (kernel command line parsing, the root policy, device spec
// resolution against a sysfs tree, through sources/gpt) are unit-tested;
// the PID 1 engine is Linux-only.
package initramfs
