package initrd

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/testkit"
)

// TestPoweroffBoots boots Debian's kernel with the poweroff initramfs: the
// machine must power down (QEMU exits) with the kernel's power-down message.
func TestPoweroffBoots(t *testing.T) {
	ctx := t.Context()
	k := fetchDebianKernel(t, ctx)
	var img bytes.Buffer
	if err := Poweroff(&img); err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(t.TempDir(), "poweroff.cpio.gz")
	if err := os.WriteFile(initrd, img.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, testkit.Tool(t, "qemu-system-x86_64"), "-m", "256", "-nodefaults", "-no-user-config",
		"-serial", "stdio", "-display", "none", "-no-reboot",
		"-kernel", k.Vmlinuz, "-initrd", initrd, "-append", "console=ttyS0 panic=-1").CombinedOutput()
	if err != nil {
		t.Fatalf("QEMU: %v\n%s", err, out)
	}
	if s := string(out); !strings.Contains(s, "Run /init as init process") || !strings.Contains(s, "reboot: Power down") {
		t.Fatalf("console lacks the init start or the power-down message:\n%s", s)
	}
}
