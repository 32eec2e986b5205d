package guestinfo

import "encoding/binary"

// VMwareVendor is the hypervisor vendor signature of VMware at CPUID leaf
// 0x40000000.
const VMwareVendor = "VMwareVMware"

// Hypervisor reports whether CPUID says a hypervisor is present (leaf 1,
// ECX bit 31) and, if so, its 12-byte vendor signature from leaf
// 0x40000000 (EBX, ECX, EDX). It executes only CPUID, which is safe
// everywhere; off amd64 it reports no hypervisor.
func Hypervisor() (vendor string, present bool) {
	if !hasCPUID {
		return "", false
	}
	_, _, ecx, _ := cpuid(1, 0)
	if ecx&(1<<31) == 0 {
		return "", false
	}
	_, b, c, d := cpuid(0x40000000, 0)
	var sig [12]byte
	binary.LittleEndian.PutUint32(sig[0:], b)
	binary.LittleEndian.PutUint32(sig[4:], c)
	binary.LittleEndian.PutUint32(sig[8:], d)
	return string(sig[:]), true
}

// IsVMware reports whether this is a VMware VM, the only place where the
// backdoor port may be touched.
func IsVMware() bool {
	vendor, present := Hypervisor()
	return present && vendor == VMwareVendor
}
