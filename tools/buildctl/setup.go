package buildctl

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/tools/project"
	"github.com/petrel-os/petrel/tools/sdk"
)

// badEnvironment marks a problem of the host (missing tools) so that it
// exits with ExitBadInput, like bad input.
type badEnvironment struct{ err error }

func (e *badEnvironment) Error() string   { return e.err.Error() }
func (e *badEnvironment) Unwrap() []error { return []error{project.ErrInvalidInput, e.err} }

func (a *app) setupCmd() *cobra.Command {
	var check bool
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Check the host tools of Twoliter.toml and install the missing ones",
		Long: `setup checks every [[sdk.tool]] of Twoliter.toml: the command is in PATH
and recent enough, or the file exists. It installs the Debian packages of the
missing tools with apt-get (through sudo when not root). With --check it only
reports them and exits with status 2.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			p, _, err := a.loadManifests(ctx)
			if err != nil {
				return err
			}
			tools := p.Manifest.SDK.Tools
			if check {
				missing, err := sdk.Check(ctx, tools)
				if err != nil {
					return err
				}
				if len(missing) > 0 {
					return &badEnvironment{err: &sdk.MissingError{Missing: missing}}
				}
			} else if err := sdk.Install(ctx, tools, a.stdout, a.stderr); err != nil {
				var me *sdk.MissingError
				if errors.As(err, &me) {
					return &badEnvironment{err: err}
				}
				return err
			}
			fmt.Fprintf(a.stdout, "all %d host tools are installed\n", len(tools))
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "only check; exit with status 2 when a tool is missing")
	return cmd
}

func (a *app) taskCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "task NAME",
		Short: "Run a task of Makefile.toml after its dependencies",
		Long: `task runs the named task of Makefile.toml, after the tasks it depends on
(each once), in the project root, with the effective BUILDSYS_* configuration
in the environment. A task command "buildctl" runs this buildctl.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			p, _, err := a.loadManifests(cmd.Context())
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []string
			for name, t := range p.Make.Tasks {
				names = append(names, name+"\t"+t.Description)
			}
			slices.Sort(names)
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, cfg, err := a.loadManifests(ctx)
			if err != nil {
				return err
			}
			order, err := taskOrder(p.Make.Tasks, args[0])
			if err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the buildctl executable: %w", err)
			}
			env := append(os.Environ(), cfg.Env()...)
			for _, name := range order {
				t := p.Make.Tasks[name]
				if t.Command == "" {
					continue
				}
				command := t.Command
				if command == "buildctl" {
					command = self
				}
				a.logger.Info("task started", "task", name, "command", t.Command, "args", t.Args)
				c := exec.CommandContext(ctx, command, t.Args...)
				c.Dir, c.Env = p.Root, env
				c.Stdout, c.Stderr = a.stdout, a.stderr
				if err := c.Run(); err != nil {
					return fmt.Errorf("run task %s (%s %s): %w", name, t.Command, strings.Join(t.Args, " "), err)
				}
			}
			return nil
		},
	}
}

// taskOrder returns name after its dependencies, depth first, each once.
// Makefile.toml validation has already rejected unknown tasks and cycles.
func taskOrder(tasks map[string]project.Task, name string) ([]string, error) {
	if _, ok := tasks[name]; !ok {
		known := make([]string, 0, len(tasks))
		for k := range tasks {
			known = append(known, k)
		}
		slices.Sort(known)
		return nil, fmt.Errorf("%w: unknown task %q (known: %s)", errUsage, name, strings.Join(known, ", "))
	}
	var order []string
	seen := map[string]bool{}
	var visit func(string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, d := range tasks[n].Dependencies {
			visit(d)
		}
		order = append(order, n)
	}
	visit(name)
	return order, nil
}
