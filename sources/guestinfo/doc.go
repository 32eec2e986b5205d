// Package guestinfo reads VMware guestinfo keys (the "guestinfo.*" entries
// of a VM's .vmx configuration, set with vmware-rpctool, govc or the vSphere
// API) from inside the guest, without open-vm-tools.
//
// It talks to the hypervisor through the VMware backdoor: an "in" from I/O
// port 0x5658 with the magic "VMXh" in EAX, which VMware intercepts even
// in user space. On that port it speaks RPCI, the guest-to-host message
// protocol: open a channel, send "info-get guestinfo.<key>" four bytes at a
// time, receive the reply ("1 <value>" when set, "0 <why>" when not) four
// bytes at a time, close the channel.
//
// On any other machine the same "in" raises a general-protection fault and
// the kernel kills the process with SIGSEGV, so the backdoor is touched
// only after CPUID says so: the hypervisor-present bit (leaf 1, ECX bit 31)
// and the vendor "VMwareVMware" at leaf 0x40000000. Off VMware, and on
// every architecture but amd64, Reader.Get returns ErrNotVMware at once.
// A fault that still happens (a VMware VM whose backdoor is restricted to
// the kernel) is turned into ErrBackdoorFault instead of killing the
// process.
//
// The protocol runs in Go over the Port interface, one backdoor call per
// method call, so it is tested against a fake hypervisor.
package guestinfo
