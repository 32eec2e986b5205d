package guestinfo

import (
	"context"
	"errors"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestHypervisorMatchesKernel runs CPUID on this machine and compares the
// hypervisor-present bit with the kernel's "hypervisor" CPU flag.
func TestHypervisorMatchesKernel(t *testing.T) {
	cpuinfo, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Fatal(err)
	}
	var flags []string
	for line := range strings.Lines(string(cpuinfo)) {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(name) == "flags" {
			flags = strings.Fields(value)
			break
		}
	}
	if len(flags) == 0 && runtime.GOARCH == "amd64" {
		t.Fatal("no flags line in /proc/cpuinfo")
	}
	vendor, present := Hypervisor()
	if want := slices.Contains(flags, "hypervisor"); present != want {
		t.Fatalf("Hypervisor() present = %v, /proc/cpuinfo hypervisor flag = %v", present, want)
	}
	if present && strings.Trim(vendor, "\x00") == "" {
		t.Fatal("hypervisor present but its vendor signature is empty")
	}
	t.Logf("hypervisor present %v, vendor %q", present, vendor)
}

// TestNotVMwareHere needs a machine that is not a VMware VM (the CI
// machines are Firecracker/KVM guests): detection says no and Get returns
// ErrNotVMware without touching the port.
func TestNotVMwareHere(t *testing.T) {
	if vendor, _ := Hypervisor(); IsVMware() || vendor == VMwareVendor {
		t.Fatalf("IsVMware() = true (vendor %q): these tests expect a machine that is not a VMware VM", vendor)
	}
	for _, key := range []string{"guestinfo.userdata", "guestinfo.userdata.encoding"} {
		t.Run(key, func(t *testing.T) {
			value, ok, err := Reader{}.Get(context.Background(), key)
			if !errors.Is(err, ErrNotVMware) || ok || value != "" {
				t.Fatalf("Get(%q) = %q, %v, %v; want ErrNotVMware", key, value, ok, err)
			}
			if want := "read " + key + ": not a VMware virtual machine"; err.Error() != want {
				t.Fatalf("error %q, want %q", err, want)
			}
		})
	}
	// A bad key is reported before detection.
	if _, _, err := (Reader{}).Get(context.Background(), "userdata"); err == nil || errors.Is(err, ErrNotVMware) {
		t.Fatalf("bad key: %v", err)
	}
}
