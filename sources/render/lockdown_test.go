package render

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSetLockdown runs SetLockdown against a fake securityfs file that
// reads like the kernel's.
func TestSetLockdown(t *testing.T) {
	t.Parallel()
	const all = "none integrity confidentiality"
	for _, tc := range []struct {
		name, file, want string
		after, out, log  string // file content after, stdout, a log substring
		err              string
	}{
		{"raise", "[none] integrity confidentiality\n", "integrity", "integrity", "petrel: kernel lockdown integrity\n", "", ""},
		{"raise further", "none [integrity] confidentiality\n", "confidentiality", "confidentiality", "petrel: kernel lockdown confidentiality\n", "", ""},
		{"already", "none [integrity] confidentiality\n", "integrity", "none [integrity] confidentiality\n", "", "kernel lockdown already at the level set", ""},
		{"lower takes a reboot", "none integrity [confidentiality]\n", "none", "none integrity [confidentiality]\n", "",
			`level=WARN msg="kernel lockdown cannot be lowered while the kernel runs; the setting takes effect after a reboot" level=confidentiality setting=none`, ""},
		{"unknown level", "[none] integrity confidentiality\n", "full", "[none] integrity confidentiality\n", "", "", `unknown level "full"`},
		{"not offered", "[none] integrity\n", "confidentiality", "[none] integrity\n", "", "", "the kernel offers only none, integrity"},
		{"no current level", all + "\n", "integrity", all + "\n", "", "", "no current level"},
		{"missing file", "", "integrity", "", "", "", "read kernel lockdown: open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "lockdown")
			if tc.file != "" {
				if err := os.WriteFile(file, []byte(tc.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var out, logs bytes.Buffer
			err := SetLockdown(file, tc.want, &out, slog.New(slog.NewTextHandler(&logs, nil)))
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("SetLockdown = %v, want error %q", err, tc.err)
			}
			if got, _ := os.ReadFile(file); string(got) != tc.after {
				t.Errorf("file = %q, want %q", got, tc.after)
			}
			if out.String() != tc.out || !strings.Contains(logs.String(), tc.log) {
				t.Errorf("out %q, log %q; want %q and a log with %q", out.String(), logs.String(), tc.out, tc.log)
			}
		})
	}
}
