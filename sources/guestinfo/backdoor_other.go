//go:build !amd64

package guestinfo

const hasCPUID = false

func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32) { return 0, 0, 0, 0 }

// hostPort stands for the backdoor port, which exists only on amd64.
type hostPort struct{}

// Call implements Port.
func (hostPort) Call(Regs) (Regs, error) { return Regs{}, ErrNotVMware }
