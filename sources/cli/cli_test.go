package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/sources/testkit"
)

// tree builds a small command tree like the agents': a root with a flag
// and a subcommand taking one argument.
func tree() *cobra.Command {
	var fail, misuse bool
	var code int
	root := &cobra.Command{
		Use:  "prog",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case misuse:
				return Usagef("--misuse given")
			case fail:
				return errors.New("work failed")
			case code != 0:
				return WithExitCode(code, fmt.Errorf("outcome %d", code))
			}
			_, err := cmd.OutOrStdout().Write([]byte("root ran\n"))
			return err
		},
	}
	root.Flags().BoolVar(&fail, "fail", false, "fail")
	root.Flags().BoolVar(&misuse, "misuse", false, "return a usage error")
	root.Flags().IntVar(&code, "code", 0, "fail with this exit code")
	sub := &cobra.Command{
		Use:  "sub FILE",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := cmd.OutOrStdout().Write([]byte("sub " + args[0] + "\n"))
			return err
		},
	}
	group := &cobra.Command{Use: "group", Args: cobra.NoArgs}
	group.AddCommand(&cobra.Command{
		Use:  "leaf",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write([]byte("leaf ran\n"))
			return err
		},
	})
	root.AddCommand(sub, group)
	return root
}

func TestRun(t *testing.T) {
	t.Parallel()
	testkit.CheckMain(t, func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
		return Run(ctx, tree(), args, stdout, stderr)
	}, []testkit.MainCase{
		{Name: "nil args", Args: nil, Code: 0, Out: "root ran"},
		{Name: "sub", Args: []string{"sub", "x"}, Code: 0, Out: "sub x"},
		{Name: "help", Args: []string{"--help"}, Code: 0, Out: "Usage:"},
		{Name: "sub help", Args: []string{"sub", "-h"}, Code: 0, Out: "prog sub FILE"},
		{Name: "unknown flag", Args: []string{"--bogus"}, Code: 2, Err: "prog: unknown flag: --bogus\nRun 'prog --help' for usage."},
		{Name: "single-dash long flag", Args: []string{"-fail"}, Code: 2, Err: "unknown shorthand flag: 'f'"},
		{Name: "unknown subcommand", Args: []string{"frob"}, Code: 2, Err: `unknown command "frob"`},
		{Name: "argument count", Args: []string{"sub"}, Code: 2, Err: "Run 'prog sub --help'"},
		{Name: "failure", Args: []string{"--fail"}, Code: 1, Err: "prog: work failed\n"},
		{Name: "own exit code", Args: []string{"--code", "3"}, Code: 3, Err: "prog: outcome 3\n"},
		{Name: "shared exit code refused", Args: []string{"--code", "2"}, Code: 1, Err: "prog: outcome 2\n"},
		{Name: "usage from RunE", Args: []string{"--misuse"}, Code: 2, Err: "prog: --misuse given\nRun 'prog --help'"},
		{Name: "group without subcommand", Args: []string{"group"}, Code: 2, Err: "prog: missing subcommand (want one of leaf)\nRun 'prog group --help'"},
		{Name: "group unknown subcommand", Args: []string{"group", "frob"}, Code: 2, Err: `unknown command "frob" for "prog group"`},
		{Name: "group leaf", Args: []string{"group", "leaf"}, Code: 0, Out: "leaf ran"},
		{Name: "completion disabled", Args: []string{"completion", "bash"}, Code: 2, Err: `unknown command "completion"`},
	})
}

func TestUsagef(t *testing.T) {
	t.Parallel()
	inner := errors.New("inner")
	err := Usagef("bad value: %w", inner)
	if !errors.Is(err, ErrUsage) || !errors.Is(err, inner) || err.Error() != "bad value: inner" {
		t.Errorf("Usagef = %v; want a usage error wrapping %v", err, inner)
	}
}

func TestNewLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := NewLogger(&buf, "warn", "test")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown")
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, "component=test") {
		t.Errorf("logger at warn wrote %q", got)
	}
	if _, err := NewLogger(&buf, "loud", "test"); !errors.Is(err, ErrUsage) {
		t.Errorf("NewLogger(loud) = %v, want a usage error", err)
	}
}
