package grub

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

func sampleBank() BankConfig {
	return BankConfig{
		Title:        "Petrel 1.0.0 (aws-dev)",
		KernelParams: []string{"console=tty0", "console=ttyS0,115200n8", "net.ifnames=0", "quiet", "selinux=1", "enforcing=1"},
		InitParams:   []string{"systemd.log_target=journal-or-kmsg", "systemd.show_status=true"},
		Verity: Verity{
			DataBlocks: 16384,
			RootHash:   "e90e6b2954fe6d782cdcbc021f81ba9b6ce48d81dcaba2951dcd11c9afb8df6a",
			Salt:       "b7c84011741009bf8037e963363195e03507407599ddb9cd513d190b11dc80d0",
		},
	}
}

func TestBankGrubCfgGolden(t *testing.T) {
	got, err := BankGrubCfg(sampleBank())
	if err != nil {
		t.Fatalf("BankGrubCfg: %v", err)
	}
	checkGolden(t, "bank.cfg", got)
	if !strings.Contains(string(got), `"dm-mod.create=root,,,ro,0 131072 verity 1 PARTUUID=$boot_uuid/PARTNROFF=1 PARTUUID=$boot_uuid/PARTNROFF=2 4096 4096 16384 1 sha256 e90e6b`) {
		t.Errorf("verity table not as expected:\n%s", got)
	}
	// GRUB's own parser accepts the file.
	path := filepath.Join(t.TempDir(), "grub.cfg")
	if err := os.WriteFile(path, got, 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, "grub-script-check", path)
}

func TestBankConfigValidate(t *testing.T) {
	t.Parallel()
	bad := sampleBank()
	bad.Title = "it's"
	bad.KernelParams = []string{"ok", "root=/dev/sda", "a b", ""}
	bad.InitParams = []string{"--"}
	bad.Verity = Verity{RootHash: "xyz", Salt: "zz"}
	_, err := BankGrubCfg(bad)
	if err == nil {
		t.Fatal("BankGrubCfg(bad) = nil error")
	}
	for _, want := range []string{"title", "kernel_params[1]", "kernel_params[2]", "kernel_params[3]", "init_params[0]", "data_blocks", "root_hash", "salt"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	for _, tt := range []struct{ in, want string }{
		{"console=ttyS0,115200n8", "console=ttyS0,115200n8"},
		{"x=$y", "'x=$y'"},
		{"a;b", "'a;b'"},
	} {
		if got := quoteParam(tt.in); got != tt.want {
			t.Errorf("quoteParam(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
