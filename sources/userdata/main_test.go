package userdata

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMainFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	if err := os.WriteFile(ran, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	userData := filepath.Join(dir, "user-data.toml")
	if err := os.WriteFile(userData, []byte("[settings]\nmotd = \"x\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "none.sock")
	for _, tt := range []struct {
		name     string
		args     []string
		code     int
		out, err string // substrings
	}{
		{name: "help", args: []string{"--help"}, code: 0, out: "--providers"},
		{name: "unknown flag", args: []string{"--bogus"}, code: 2, err: "early-boot-config: unknown flag: --bogus"},
		{name: "single-dash long flag", args: []string{"-providers", "file"}, code: 2, err: "unknown shorthand flag"},
		{name: "argument", args: []string{"extra"}, code: 2, err: `unknown command "extra"`},
		{name: "unknown provider", args: []string{"--providers", "file,floppy"}, code: 2, err: `unknown provider "floppy"`},
		{name: "bad log level", args: []string{"--log-level", "loud"}, code: 2, err: `bad --log-level "loud"`},
		{name: "already ran", args: []string{"--marker", ran, "--socket-path", missing}, code: 0, out: "already applied"},
		{
			name: "vmware off VMware", code: 0, out: "applied user data from 0 providers", err: `provider="VMware guestinfo"`,
			args: []string{"--providers", "vmware", "--marker", filepath.Join(dir, "vmware-marker"), "--socket-path", missing},
		},
		{name: "help lists vmware", args: []string{"--help"}, code: 0, out: "file,config-drive,imds,vmware"},
		{
			name: "no API", code: 1, err: "none.sock",
			args: []string{"--providers", "file", "--user-data-file", userData, "--marker", filepath.Join(dir, "marker"), "--socket-path", missing},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			code := Main(context.Background(), tt.args, &out, &errb)
			if code != tt.code || !strings.Contains(out.String(), tt.out) || !strings.Contains(errb.String(), tt.err) {
				t.Errorf("Main(%q) = %d, stdout %q, stderr %q; want %d, stdout ~%q, stderr ~%q",
					tt.args, code, out.String(), errb.String(), tt.code, tt.out, tt.err)
			}
		})
	}
}
