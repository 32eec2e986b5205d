package hostctr

import (
	"slices"
	"testing"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestPrivilegeOptsLabel applies the privilege options of each kind of
// container to a spec: every one keeps the SELinux label it was given
// (oci.WithPrivileged clears the label, so a superpowered container
// would run as runtime_t if the label came first), and only the
// superpowered one gets every capability.
func TestPrivilegeOptsLabel(t *testing.T) {
	for _, tt := range []struct {
		name       string
		spec       Spec
		label      string
		privileged bool
	}{
		{"superpowered host container", Spec{Kind: KindHost, Name: "admin", Superpowered: true}, labelSuper, true},
		{"host container", Spec{Kind: KindHost, Name: "control"}, labelControl, false},
		{"bootstrap container", Spec{Kind: KindBootstrap, Name: "setup"}, labelControl, false},
		{"without SELinux", Spec{Kind: KindHost, Name: "admin", Superpowered: true}, "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &oci.Spec{Process: &specs.Process{SelinuxLabel: "before", Capabilities: &specs.LinuxCapabilities{}}, Linux: &specs.Linux{}}
			if tt.label == "" {
				s.Process.SelinuxLabel = ""
			}
			if err := oci.ApplyOpts(t.Context(), nil, &containers.Container{ID: tt.spec.Name}, s, privilegeOpts(tt.spec, tt.label)...); err != nil {
				t.Fatal(err)
			}
			if s.Process.SelinuxLabel != tt.label {
				t.Errorf("process label = %q, want %q", s.Process.SelinuxLabel, tt.label)
			}
			if got := slices.Contains(s.Process.Capabilities.Bounding, "CAP_SYS_RAWIO") && s.Linux.Seccomp == nil; got != tt.privileged {
				t.Errorf("privileged (CAP_SYS_RAWIO, no seccomp) = %v, want %v; capabilities %v", got, tt.privileged, s.Process.Capabilities.Bounding)
			}
		})
	}
}
