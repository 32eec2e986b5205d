package grub

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

func TestSelectScriptGolden(t *testing.T) {
	got, err := SelectScript(DefaultLayout())
	if err != nil {
		t.Fatalf("SelectScript: %v", err)
	}
	checkGolden(t, "select-default.cfg", got)
	path := filepath.Join(t.TempDir(), "select.cfg")
	if err := os.WriteFile(path, got, 0o644); err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, "grub-script-check", path)
}

func TestLayoutValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		l    Layout
		want []string
	}{
		{"default", DefaultLayout(), nil},
		{"all bad", Layout{ESPPartition: 0, BootPartitionA: 3, BootPartitionB: 3, EnvPath: "EFI/x y", FailDelay: -1},
			[]string{"ESPPartition is 0", "both 3", "EnvPath", "FailDelay"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.l.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %v, want it to mention %q", err, w)
				}
			}
		})
	}
}
