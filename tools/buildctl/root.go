package buildctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/tools/project"
)

// Exit codes of buildctl.
const (
	ExitOK       = 0
	ExitFailure  = 1 // a build or a test failed
	ExitBadInput = 2 // bad input or usage
)

// errUsage marks command-line usage errors.
var errUsage = errors.New("usage error")

// globalFlags are the flags every command accepts.
type globalFlags struct {
	projectDir string
	variant    string
	arch       string
	jobs       int
	verbose    bool
}

// app is the state shared by the commands of one invocation.
type app struct {
	stdout, stderr io.Writer
	flags          globalFlags
	logger         *slog.Logger
	// keys is the keys directory the images trust, when a command names
	// one (buildctl release --keys); see trustedRoot.
	keys string
}

// Main runs buildctl with args (without the program name) and returns its
// exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "buildctl: %s\n", err)
	return exitCode(err)
}

func exitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, errUsage), errors.Is(err, project.ErrInvalidInput):
		return ExitBadInput
	default:
		return ExitFailure
	}
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "buildctl",
		Short:         "Build Petrel packages, kits and variant images",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			level := slog.LevelInfo
			if a.flags.verbose {
				level = slog.LevelDebug
			}
			a.logger = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return fmt.Errorf("%w: %w", errUsage, err)
	})
	pf := root.PersistentFlags()
	pf.StringVarP(&a.flags.projectDir, "project", "C", "", "project directory (default: the nearest directory upwards with a Twoliter.toml)")
	pf.StringVar(&a.flags.variant, "variant", "", "variant to build (overrides BUILDSYS_VARIANT and Makefile.toml)")
	pf.StringVar(&a.flags.arch, "arch", "", "target architecture (overrides BUILDSYS_ARCH and Makefile.toml)")
	pf.IntVarP(&a.flags.jobs, "jobs", "j", 0, "parallel jobs (overrides BUILDSYS_JOBS; default: number of cores)")
	pf.BoolVarP(&a.flags.verbose, "verbose", "v", false, "log debug messages")

	for _, c := range a.commands() {
		root.AddCommand(c)
	}
	return root
}

// usageArgs wraps a cobra positional-argument validator so that its errors
// map to exit code 2.
func usageArgs(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return fmt.Errorf("%w: %w", errUsage, err)
		}
		return nil
	}
}

// findProjectRoot returns dir if set, else the nearest directory at or above
// the working directory that holds a Twoliter.toml.
func findProjectRoot(dir string) (string, error) {
	if dir != "" {
		return filepath.Abs(dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("get working directory: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "Twoliter.toml")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%w: no Twoliter.toml in %q or any parent directory", project.ErrInvalidInput, wd)
		}
	}
}
