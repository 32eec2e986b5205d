package settings

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAgentFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	osRelease := filepath.Join(dir, "os-release")
	if err := os.WriteFile(osRelease, []byte("NAME=Petrel\nVERSION_ID=1.2.3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "none.sock")
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(dir, "ds2", "current")); err != nil {
			t.Errorf("storewolf did not create the datastore: %v", err)
		}
	})
	for _, tt := range []struct {
		name     string
		main     func(context.Context, []string, io.Writer, io.Writer) int
		args     []string
		code     int
		out, err string // substrings
	}{
		{name: "storewolf help", main: StorewolfMain, args: []string{"--help"}, code: 0, out: "--data-store-base-path"},
		{name: "storewolf unknown flag", main: StorewolfMain, args: []string{"--bogus"}, code: 2, err: "storewolf: unknown flag: --bogus"},
		{name: "storewolf single-dash long flag", main: StorewolfMain, args: []string{"-data-store-base-path", dir}, code: 2, err: "unknown shorthand flag"},
		{name: "storewolf argument", main: StorewolfMain, args: []string{"extra"}, code: 2, err: `unknown command "extra"`},
		{name: "storewolf bad log level", main: StorewolfMain, args: []string{"--log-level", "loud"}, code: 2, err: `bad --log-level "loud"`},
		{name: "storewolf no version", main: StorewolfMain, args: []string{"--os-release", filepath.Join(dir, "none"), "--data-store-base-path", filepath.Join(dir, "ds0")}, code: 1, err: "no --version given"},
		{name: "storewolf bad defaults", main: StorewolfMain, args: []string{"--defaults-dir", filepath.Join(dir, "none"), "--version", "1.0.0", "--data-store-base-path", filepath.Join(dir, "ds1")}, code: 1, err: "load defaults"},
		{
			name: "storewolf", main: StorewolfMain, code: 0, out: "staged",
			args: []string{"--data-store-base-path", filepath.Join(dir, "ds2"), "--defaults-dir", "defaults", "--os-release", osRelease, "--transaction", "t1"},
		},
		{name: "committer help", main: CommitterMain, args: []string{"-h"}, code: 0, out: "--transaction"},
		{name: "committer unknown flag", main: CommitterMain, args: []string{"--bogus"}, code: 2, err: "settings-committer: unknown flag: --bogus"},
		{name: "committer single-dash long flag", main: CommitterMain, args: []string{"-transaction", "x"}, code: 2, err: "unknown shorthand flag"},
		{name: "committer argument", main: CommitterMain, args: []string{"extra"}, code: 2, err: `unknown command "extra"`},
		{name: "committer no API", main: CommitterMain, args: []string{"--socket-path", missing}, code: 1, err: "none.sock"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			code := tt.main(context.Background(), tt.args, &out, &errb)
			if code != tt.code || !strings.Contains(out.String(), tt.out) || !strings.Contains(errb.String(), tt.err) {
				t.Errorf("Main(%q) = %d, stdout %q, stderr %q; want %d, stdout ~%q, stderr ~%q",
					tt.args, code, out.String(), errb.String(), tt.code, tt.out, tt.err)
			}
		})
	}
}
