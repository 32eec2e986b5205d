package guestinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

const hasCPUID = true

// cpuid executes CPUID with EAX=leaf, ECX=sub.
//
//go:noescape
func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

// backdoorIn loads r into EAX, EBX, ECX, EDX, ESI, EDI, executes
// "in eax, dx" and stores the registers back into r.
//
//go:noescape
func backdoorIn(r *Regs)

// hostPort is the real backdoor port. Only IsVMware machines may use it.
type hostPort struct{}

// Call implements Port. A fault of the "in" (the backdoor is closed to
// user space) becomes ErrBackdoorFault instead of killing the process.
func (hostPort) Call(in Regs) (out Regs, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if re, ok := r.(runtime.Error); ok {
			err = fmt.Errorf("%w: \"in\" from port %#x: %v", ErrBackdoorFault, backdoorPort, re)
			return
		}
		panic(r)
	}()
	out = in
	backdoorIn(&out)
	return out, nil
}
