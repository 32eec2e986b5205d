package render

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestMainFlags(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "none.sock")
	for _, tt := range []struct {
		name     string
		args     []string
		stdin    string
		code     int
		out, err string // substrings
	}{
		{name: "help", args: []string{"--help"}, code: 0, out: "--daemon"},
		{name: "set-hostname help", args: []string{"set-hostname", "--help"}, code: 0, out: "settings-applier set-hostname FILE"},
		{name: "unknown flag", args: []string{"--bogus"}, code: 2, err: "settings-applier: unknown flag: --bogus"},
		{name: "single-dash long flag", args: []string{"-all"}, code: 2, err: "unknown shorthand flag"},
		{name: "argument", args: []string{"extra"}, code: 2, err: `unknown command "extra"`},
		{name: "set-hostname without file", args: []string{"set-hostname"}, code: 2, err: "accepts 1 arg(s), received 0"},
		{name: "bad log level", args: []string{"--all", "--log-level", "loud"}, code: 2, err: `bad --log-level "loud"`},
		{name: "keys not JSON", args: []string{"--daemon", "--socket-path", missing}, stdin: "motd", code: 2, err: "expected a JSON list of strings"},
		{name: "no API", args: []string{"--socket-path", missing}, stdin: `["settings.motd"]`, code: 1, err: "none.sock"},
		{name: "set-hostname missing file", args: []string{"set-hostname", filepath.Join(t.TempDir(), "none")}, code: 1, err: "settings-applier: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			code := Run(context.Background(), tt.args, strings.NewReader(tt.stdin), &out, &errb)
			if code != tt.code || !strings.Contains(out.String(), tt.out) || !strings.Contains(errb.String(), tt.err) {
				t.Errorf("Run(%q) = %d, stdout %q, stderr %q; want %d, stdout ~%q, stderr ~%q",
					tt.args, code, out.String(), errb.String(), tt.code, tt.out, tt.err)
			}
		})
	}
}
