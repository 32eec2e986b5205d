package buildctl

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/tools/graph"
)

func (a *app) listCmd() *cobra.Command {
	var long bool
	cmd := &cobra.Command{
		Use:       "list packages|kits|variants",
		Short:     "List the packages, kits or variants of the project",
		Args:      usageArgs(cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs)),
		ValidArgs: []string{"packages", "kits", "variants"},
		RunE: func(cmd *cobra.Command, args []string) error {
			p, _, err := a.loadProject(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			switch args[0] {
			case "packages":
				if long {
					fmt.Fprintln(tw, "NAME\tVERSION\tRPM\tSUBPACKAGES")
				}
				for _, name := range p.PackageNames() {
					pkg := p.Packages[name]
					if !long {
						fmt.Fprintln(tw, name)
						continue
					}
					subs := "-"
					if names := pkg.Spec.RPMNames()[1:]; len(names) > 0 {
						subs = strings.Join(names, ",")
					}
					fmt.Fprintf(tw, "%s\t%s-%s\t%s\t%s\n", name, pkg.Spec.Version, pkg.Spec.Release, p.RPMName(name), subs)
				}
			case "kits":
				if long {
					fmt.Fprintln(tw, "NAME\tVERSION\tPACKAGES")
				}
				for _, name := range p.KitNames() {
					k := p.Kits[name]
					if long {
						fmt.Fprintf(tw, "%s\t%s\t%s\n", name, k.Version, strings.Join(k.Packages, ","))
					} else {
						fmt.Fprintln(tw, name)
					}
				}
			case "variants":
				if long {
					fmt.Fprintln(tw, "NAME\tFORMAT\tPLAN\tARCHES\tKITS")
				}
				for _, name := range p.VariantNames() {
					v := p.Variants[name]
					if long {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, v.ImageFormat, v.ImageLayout.PartitionPlan,
							strings.Join(v.SupportedArches, ","), strings.Join(v.Kits, ","))
					} else {
						fmt.Fprintln(tw, name)
					}
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&long, "long", "l", false, "show versions, RPM names and other details in columns")
	return cmd
}

func (a *app) graphCmd() *cobra.Command {
	var format, kit string
	cmd := &cobra.Command{
		Use:   "graph [--format text|dot] [--kit KIT] [PACKAGE...]",
		Short: "Print the package dependency graph",
		Long: `graph prints the named packages (or the packages of --kit, or every package)
with their transitive dependencies, dependencies first. The text format
writes "package: dependency, ..." per line, marking build-only dependencies
with "(build)"; the dot format writes a Graphviz digraph.`,
		ValidArgsFunction: a.completePackages,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "dot" {
				return fmt.Errorf("%w: --format: unknown format %q (valid: text, dot)", errUsage, format)
			}
			p, _, err := a.loadProject(cmd.Context())
			if err != nil {
				return err
			}
			g, err := graph.New(p)
			if err != nil {
				return err
			}
			roots := args
			if kit != "" {
				k, err := p.Kit(kit)
				if err != nil {
					return err
				}
				roots = append(slices.Clone(k.Packages), args...)
			}
			for _, r := range roots {
				if _, err := p.Package(r); err != nil {
					return err
				}
			}
			if format == "dot" {
				return g.WriteDOT(a.stdout, roots)
			}
			return g.WriteText(a.stdout, roots)
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", "text", "output format: text or dot")
	f.StringVar(&kit, "kit", "", "start from the packages of this kit")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"text", "dot"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("kit", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		p, _, err := a.loadProject(cmd.Context())
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return p.KitNames(), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// completePackages completes package names; other commands may use it.
func (a *app) completePackages(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	p, _, err := a.loadProject(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return p.PackageNames(), cobra.ShellCompDirectiveNoFileComp
}
