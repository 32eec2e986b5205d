package generator

import (
	"bytes"
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

func TestMainFlags(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "none.sock")
	testkit.CheckMain(t, testkit.NoStdin(Main), []testkit.MainCase{
		{Name: "help", Args: []string{"--help"}, Code: 0, Out: "--timeout"},
		{Name: "seed help", Args: []string{"generate-seed", "-h"}, Code: 0, Out: "sundog generate-seed"},
		{Name: "unknown flag", Args: []string{"--bogus"}, Code: 2, Err: "sundog: unknown flag: --bogus"},
		{Name: "single-dash long flag", Args: []string{"-socket-path", missing}, Code: 2, Err: "unknown shorthand flag"},
		{Name: "argument", Args: []string{"extra"}, Code: 2, Err: `unknown command "extra"`},
		{Name: "seed argument", Args: []string{"generate-seed", "x"}, Code: 2, Err: "Run 'sundog generate-seed --help'"},
		{Name: "bad timeout", Args: []string{"--timeout", "soon"}, Code: 2, Err: `invalid argument "soon"`},
		{Name: "bad log level", Args: []string{"--log-level", "loud"}, Code: 2, Err: `bad --log-level "loud"`},
		{Name: "no API", Args: []string{"--socket-path", missing}, Code: 1, Err: "none.sock"},
	})
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
