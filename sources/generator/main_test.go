package generator

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestMainFlags(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "none.sock")
	for _, tt := range []struct {
		name     string
		args     []string
		code     int
		out, err string // substrings
	}{
		{name: "help", args: []string{"--help"}, code: 0, out: "--timeout"},
		{name: "seed help", args: []string{"generate-seed", "-h"}, code: 0, out: "sundog generate-seed"},
		{name: "unknown flag", args: []string{"--bogus"}, code: 2, err: "sundog: unknown flag: --bogus"},
		{name: "single-dash long flag", args: []string{"-socket-path", missing}, code: 2, err: "unknown shorthand flag"},
		{name: "argument", args: []string{"extra"}, code: 2, err: `unknown command "extra"`},
		{name: "seed argument", args: []string{"generate-seed", "x"}, code: 2, err: "Run 'sundog generate-seed --help'"},
		{name: "bad timeout", args: []string{"--timeout", "soon"}, code: 2, err: `invalid argument "soon"`},
		{name: "bad log level", args: []string{"--log-level", "loud"}, code: 2, err: `bad --log-level "loud"`},
		{name: "no API", args: []string{"--socket-path", missing}, code: 1, err: "none.sock"},
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

func TestGenerateSeed(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"generate-seed"}, &out, &errb); code != 0 {
		t.Fatalf("Main(generate-seed) = %d, stderr %q", code, errb.String())
	}
	if n, err := strconv.Atoi(strings.TrimSpace(out.String())); err != nil || n < 0 || n > 2047 {
		t.Errorf("Main(generate-seed) printed %q, want a number 0..2047", out.String())
	}
}
