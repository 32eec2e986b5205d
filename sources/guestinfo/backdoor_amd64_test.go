package guestinfo

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestHostPortFault executes the real backdoor "in" on this machine,
// which is not VMware, in a child process: the general-protection fault
// must come back as ErrBackdoorFault instead of killing the process.
func TestHostPortFault(t *testing.T) {
	if os.Getenv("GUESTINFO_FAULT_CHILD") == "1" {
		_, err := hostPort{}.Call(Regs{AX: magic, BX: protoRPCI | flagCookie, CX: msgOpen<<16 | cmdMessage, DX: backdoorPort})
		fmt.Printf("errors.Is(err, ErrBackdoorFault)=%v err=%v\n", errors.Is(err, ErrBackdoorFault), err)
		return
	}
	if IsVMware() {
		t.Fatal("this machine is a VMware VM: the fault test needs one that is not")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHostPortFault$", "-test.v")
	cmd.Env = append(os.Environ(), "GUESTINFO_FAULT_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child died: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "errors.Is(err, ErrBackdoorFault)=true err=VMware backdoor call faulted: ") {
		t.Fatalf("child output:\n%s", out)
	}
	t.Logf("%s", out)
}

// TestCPUIDLeafZero checks the CPUID wrapper against a value every x86
// CPU returns: a 12-byte vendor of letters at leaf 0.
func TestCPUIDLeafZero(t *testing.T) {
	_, b, c, d := cpuid(0, 0)
	var vendor []byte
	for _, r := range []uint32{b, d, c} {
		vendor = append(vendor, byte(r), byte(r>>8), byte(r>>16), byte(r>>24))
	}
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cpuinfo), "vendor_id\t: "+string(vendor)+"\n") {
		t.Fatalf("CPUID leaf 0 vendor %q is not the vendor_id of /proc/cpuinfo", vendor)
	}
}
