package initramfs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/petrel-os/petrel/sources/selinux"
)

// TestLoadPolicy covers what loadPolicy decides before it asks the kernel:
// no configuration or SELINUX=disabled boots without SELinux, a bad
// configuration is fatal naming its file and line, and a configuration
// that wants SELinux on a kernel without it (this build machine's kernel
// runs AppArmor, so selinuxfs cannot be mounted) is fatal, naming
// security=selinux. The load itself is checked by TestSELinuxEnforcing
// (tools/e2e), on Petrel's kernel.
func TestLoadPolicy(t *testing.T) {
	for _, tt := range []struct {
		name, config string // config "" writes none
		wantLine     string
		wantErr      []string
	}{
		{"no configuration", "", "no SELinux policy in the new root (/usr/share/factory/etc/selinux/config): booting without SELinux", nil},
		{"disabled", "SELINUX=disabled\n", "SELinux disabled by ", nil},
		{"bad configuration", "SELINUX=maybe\nSELINUXTYPE=petrel\n", "", []string{"selinux/config:1", `SELINUX="maybe"`}},
		{"kernel without SELinux", "SELINUX=enforcing\nSELINUXTYPE=petrel\n", "",
			[]string{"the new root's SELinux configuration is enforcing, but the kernel does not run SELinux", "the kernel command line needs security=selinux"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.config != "" {
				dir := filepath.Join(root, FactoryEtc, "selinux")
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "config"), []byte(tt.config), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			fsDir := t.TempDir()
			t.Cleanup(func() { _ = unix.Unmount(fsDir, unix.MNT_DETACH) }) // had a kernel with SELinux mounted it
			loaded, err := loadPolicy(console{&out}, root, "", selinux.Kernel{FS: fsDir})
			if loaded != "" {
				t.Errorf("loadPolicy reports policy %q loaded", loaded)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				if !strings.Contains(out.String(), tt.wantLine) {
					t.Errorf("console %q lacks %q", out.String(), tt.wantLine)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if tt.name == "bad configuration" && !errors.Is(err, selinux.ErrConfig) {
				t.Errorf("error %v is not ErrConfig", err)
			}
		})
	}
}
