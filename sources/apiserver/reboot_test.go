package apiserver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemctlRebooter runs fake systemctls: one that the shutdown stops
// with SIGTERM after it queued the reboot (success), one that fails.
func TestSystemctlRebooter(t *testing.T) {
	for _, tt := range []struct {
		name, script, wantErr string
	}{
		{"queued", `[ "$*" = "reboot --no-block --check-inhibitors=no" ] || exit 9`, ""},
		{"stopped by the shutdown", `echo "Failed to connect to bus: No such file or directory" >&2; kill -TERM $$`, ""},
		{"failed", `echo "Failed to start reboot.target: Access denied" >&2; exit 1`, "exit status 1: Failed to start reboot.target: Access denied"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "systemctl")
			if err := os.WriteFile(p, []byte("#!/bin/sh\n"+tt.script+"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			err := SystemctlRebooter{Path: p}.Reboot(context.Background())
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Reboot = %v, want success", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Reboot = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
