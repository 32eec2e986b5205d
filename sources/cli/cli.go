package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes of every Petrel program.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// ErrUsage is matched by the errors of Usagef and by every error Run
// reports with ExitUsage.
var ErrUsage = errors.New("usage error")

// usageError is a command-line mistake found by a command's own checks.
type usageError struct{ err error }

func (e *usageError) Error() string        { return e.err.Error() }
func (e *usageError) Unwrap() error        { return e.err }
func (e *usageError) Is(target error) bool { return target == ErrUsage }

// Usagef returns a usage error: a command returning it exits with
// ExitUsage. The message is formatted as fmt.Errorf does, so %w works.
func Usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
}

// exitError carries an exit code of a program's own (above ExitUsage).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// WithExitCode returns err so that Run exits with code instead of
// ExitFailure: for programs whose callers branch on more outcomes than
// success and failure (the updater's "no update" and "lock held"). Codes
// 0 to 2 keep their shared meaning and are refused (the error then exits
// with ExitFailure). A nil err stays nil.
func WithExitCode(code int, err error) error {
	if err == nil || code <= ExitUsage {
		return err
	}
	return &exitError{code: code, err: err}
}

// runError wraps an error returned by a command's own code (RunE and its
// hooks), as opposed to one cobra found while parsing the command line.
type runError struct{ err error }

func (e *runError) Error() string { return e.err.Error() }
func (e *runError) Unwrap() error { return e.err }

// Run executes root with args (without the program name) and returns the
// exit code. stdout receives help and the commands' output (through
// cmd.OutOrStdout), stderr the error line. Run configures root for this:
// it silences cobra's own error and usage printing, disables the
// completion command and marks the errors of every command's RunE,
// PreRunE and PersistentPreRunE, so it must be called once per tree.
//
// An error of the commands' own code exits with ExitFailure unless it
// matches ErrUsage; every error cobra reports (flags, arguments,
// subcommands) exits with ExitUsage and a hint to run --help.
func Run(ctx context.Context, root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	if args == nil {
		args = []string{} // nil makes cobra read os.Args
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SilenceErrors = true
	root.SilenceUsage = true
	root.CompletionOptions.DisableDefaultCmd = true
	markRunErrors(root)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var re *runError
	if errors.As(err, &re) && !errors.Is(err, ErrUsage) {
		fmt.Fprintf(stderr, "%s: %v\n", root.Name(), re.err)
		var ee *exitError
		if errors.As(re.err, &ee) {
			return ee.code
		}
		return ExitFailure
	}
	if re != nil {
		err = re.err
	}
	fmt.Fprintf(stderr, "%s: %v\n", root.Name(), err)
	if cmd == nil {
		cmd = root
	}
	fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	return ExitUsage
}

// markRunErrors wraps the hooks of c and its subcommands so that Run can
// tell their errors from cobra's parsing errors. A command that only
// groups subcommands gets a RunE that reports the missing subcommand as a
// usage error (cobra would print help and succeed).
func markRunErrors(c *cobra.Command) {
	if !c.Runnable() && c.HasAvailableSubCommands() {
		c.RunE = func(cmd *cobra.Command, _ []string) error {
			var names []string
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() {
					names = append(names, sub.Name())
				}
			}
			return Usagef("missing subcommand (want one of %s)", strings.Join(names, ", "))
		}
	}
	for _, fn := range []*func(*cobra.Command, []string) error{&c.PersistentPreRunE, &c.PreRunE, &c.RunE} {
		if orig := *fn; orig != nil {
			*fn = func(cmd *cobra.Command, args []string) error {
				if err := orig(cmd, args); err != nil {
					return &runError{err: err}
				}
				return nil
			}
		}
	}
	for _, sub := range c.Commands() {
		markRunErrors(sub)
	}
}

// NewLogger returns a text logger on w at level ("debug", "info", "warn"
// or "error", as given to --log-level) with a component attribute. A bad
// level is a usage error.
func NewLogger(w io.Writer, level, component string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, Usagef("bad --log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})).With("component", component), nil
}
