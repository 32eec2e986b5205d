package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// tree builds a small command tree like the agents': a root with a flag
// and a subcommand taking one argument.
func tree() *cobra.Command {
	var fail, misuse bool
	root := &cobra.Command{
		Use:  "prog",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case misuse:
				return Usagef("--misuse given")
			case fail:
				return errors.New("work failed")
			}
			_, err := cmd.OutOrStdout().Write([]byte("root ran\n"))
			return err
		},
	}
	root.Flags().BoolVar(&fail, "fail", false, "fail")
	root.Flags().BoolVar(&misuse, "misuse", false, "return a usage error")
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
	for _, tt := range []struct {
		name     string
		args     []string
		code     int
		out, err string // substrings
	}{
		{name: "nil args", args: nil, code: 0, out: "root ran"},
		{name: "sub", args: []string{"sub", "x"}, code: 0, out: "sub x"},
		{name: "help", args: []string{"--help"}, code: 0, out: "Usage:"},
		{name: "sub help", args: []string{"sub", "-h"}, code: 0, out: "prog sub FILE"},
		{name: "unknown flag", args: []string{"--bogus"}, code: 2, err: "prog: unknown flag: --bogus\nRun 'prog --help' for usage."},
		{name: "single-dash long flag", args: []string{"-fail"}, code: 2, err: "unknown shorthand flag: 'f'"},
		{name: "unknown subcommand", args: []string{"frob"}, code: 2, err: `unknown command "frob"`},
		{name: "argument count", args: []string{"sub"}, code: 2, err: "Run 'prog sub --help'"},
		{name: "failure", args: []string{"--fail"}, code: 1, err: "prog: work failed\n"},
		{name: "usage from RunE", args: []string{"--misuse"}, code: 2, err: "prog: --misuse given\nRun 'prog --help'"},
		{name: "group without subcommand", args: []string{"group"}, code: 2, err: "prog: missing subcommand (want one of leaf)\nRun 'prog group --help'"},
		{name: "group unknown subcommand", args: []string{"group", "frob"}, code: 2, err: `unknown command "frob" for "prog group"`},
		{name: "group leaf", args: []string{"group", "leaf"}, code: 0, out: "leaf ran"},
		{name: "completion disabled", args: []string{"completion", "bash"}, code: 2, err: `unknown command "completion"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			code := Run(context.Background(), tree(), tt.args, &out, &errb)
			if code != tt.code || !strings.Contains(out.String(), tt.out) || !strings.Contains(errb.String(), tt.err) {
				t.Errorf("Run(%q) = %d, stdout %q, stderr %q; want %d, stdout ~%q, stderr ~%q",
					tt.args, code, out.String(), errb.String(), tt.code, tt.out, tt.err)
			}
			if tt.code == 1 && strings.Contains(errb.String(), "--help") {
				t.Errorf("Run(%q) stderr %q: a failure is not a usage error", tt.args, errb.String())
			}
		})
	}
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
