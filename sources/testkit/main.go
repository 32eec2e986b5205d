package testkit

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// MainFunc is a command's entry point as the project writes it (see
// sources/cli): arguments after the program name, standard input and
// output, and the exit code it returns.
type MainFunc func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int

// NoStdin adapts a Main that reads no standard input to a MainFunc.
func NoStdin(main func(ctx context.Context, args []string, stdout, stderr io.Writer) int) MainFunc {
	return func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
		return main(ctx, args, stdout, stderr)
	}
}

// MainCase is one run of a command: its arguments and standard input, the
// exit code it must return and text its output must contain.
type MainCase struct {
	Name  string
	Args  []string
	Stdin string
	Code  int
	// Out and Err must be substrings of the standard output and error.
	Out, Err string
}

// CheckMain runs main once per case, each as a parallel subtest, and
// checks the exit code and the output. A run that fails with exit code 1
// must not print usage help: a failure is not a usage error (exit 2).
func CheckMain(t *testing.T, main MainFunc, cases []MainCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			code := main(context.Background(), tc.Args, strings.NewReader(tc.Stdin), &out, &errb)
			if code != tc.Code || !strings.Contains(out.String(), tc.Out) || !strings.Contains(errb.String(), tc.Err) {
				t.Errorf("Main(%q) = %d, stdout %q, stderr %q; want %d, stdout ~%q, stderr ~%q",
					tc.Args, code, out.String(), errb.String(), tc.Code, tc.Out, tc.Err)
			}
			if code == 1 && strings.Contains(errb.String(), "--help") {
				t.Errorf("Main(%q) stderr %q: a failure (exit 1) is not a usage error", tc.Args, errb.String())
			}
		})
	}
}
