// Package selinux reads and sets a host's SELinux state: the policy
// configuration (/etc/selinux/config), loading the compiled policy and
// setting the mode through selinuxfs (the initramfs does both before
// systemd starts), the labels of files (the security.selinux extended
// attribute), the status a running process sees, and the AVC denial lines
// that the kernel and userspace object managers log.
//
// Petrel writes this small package instead of using go-selinux: the
// initramfs must load a policy, which go-selinux does not do, and the rest
// is a few files of selinuxfs and procfs.
package selinux
