package buildctl

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/tools/builder"
	"github.com/petrel-os/petrel/tools/graph"
	"github.com/petrel-os/petrel/tools/kit"
	"github.com/petrel-os/petrel/tools/project"
	"github.com/petrel-os/petrel/tools/sdk"
)

func (a *app) buildPackageCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "build-package NAME...",
		Short: "Build packages and their dependencies into RPMs (build/rpms/NAME/)",
		Args:  usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			start := time.Now()
			b, _, err := a.newBuilder(cmd.Context())
			if err != nil {
				return err
			}
			rep, err := b.Build(cmd.Context(), args)
			if err != nil {
				return err
			}
			a.printReport(rep, time.Since(start))
			return nil
		},
	}
}

func (a *app) buildKitCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "build-kit [KIT]",
		Short: "Build every package of a kit and assemble its repository (build/kits/KIT/ARCH/)",
		Long: "Build every package of a kit and assemble its yum repository in build/kits/KIT/ARCH/.\n" +
			"KIT defaults to the first kit of Twoliter.toml. Unchanged packages are not rebuilt.",
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			start := time.Now()
			b, g, err := a.newBuilder(cmd.Context())
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			} else if kits := b.Project.Manifest.Kits; len(kits) > 0 {
				name = kits[0].Name
			} else {
				return fmt.Errorf("%w: no KIT given and Twoliter.toml lists no [[kit]]", errUsage)
			}
			if _, err := b.Project.Kit(name); err != nil {
				return err
			}
			res, err := kit.Build(cmd.Context(), b, g, name)
			if err != nil {
				return err
			}
			a.printReport(res.Report, 0)
			state := "unchanged"
			if res.Assembled {
				state = "assembled"
			}
			rel := res.Dir
			if r, err := filepath.Rel(b.Project.Root, res.Dir); err == nil && filepath.IsLocal(r) {
				rel = r
			}
			fmt.Fprintf(a.stdout, "kit %s %s: %s (%d packages) in %.2fs\n", name, state, rel, len(res.Packages), time.Since(start).Seconds())
			return nil
		},
	}
}

func (a *app) cleanCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "clean",
		Short: "Remove build outputs (rpms, kits, state, logs); --all also the download and Go caches",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, cfg, err := a.loadManifests(cmd.Context())
			if err != nil {
				return err
			}
			dirs := []string{"rpms", "kits", "state", "logs"}
			if all {
				dirs = append(dirs, "cache")
			}
			for _, d := range dirs {
				p := filepath.Join(cfg.BuildDir, d)
				if err := os.RemoveAll(p); err != nil {
					return fmt.Errorf("remove %q: %w", p, err)
				}
			}
			fmt.Fprintf(a.stdout, "removed %s/{%s}\n", cfg.BuildDir, strings.Join(dirs, ","))
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "also remove the lookaside and Go build caches (build/cache)")
	return cmd
}

// newBuilder loads the project, checks the host tools and returns a
// Builder with its graph.
func (a *app) newBuilder(ctx context.Context) (*builder.Builder, *graph.Graph, error) {
	t0 := time.Now()
	p, cfg, err := a.loadProject(ctx)
	if err != nil {
		return nil, nil, err
	}
	g, err := graph.New(p)
	if err != nil {
		return nil, nil, err
	}
	a.logger.Debug("project loaded", "packages", len(p.Packages), "duration", time.Since(t0))
	t0 = time.Now()
	// Only the tools builds use: checking all of them (QEMU, GRUB, ...)
	// would cost more than a whole no-op build.
	var tools []project.Tool
	for _, t := range p.Manifest.SDK.Tools {
		if slices.Contains(builder.HostTools(), t.Command) {
			tools = append(tools, t)
		}
	}
	missing, err := sdk.Check(ctx, tools)
	a.logger.Debug("host tools checked", "tools", len(tools), "duration", time.Since(t0))
	if err != nil {
		return nil, nil, err
	}
	if len(missing) > 0 {
		return nil, nil, &sdk.MissingError{Missing: missing}
	}
	return &builder.Builder{Project: p, Graph: g, Config: cfg, Logger: a.logger, Progress: a.stderr}, g, nil
}

// printReport prints the one-line summary of a package build; elapsed 0
// leaves the time out.
func (a *app) printReport(rep *builder.Report, elapsed time.Duration) {
	if rep == nil {
		return
	}
	n := len(rep.Built) + len(rep.Cached)
	var line string
	if len(rep.Built) == 0 {
		line = fmt.Sprintf("all %d packages cached", n)
	} else {
		line = fmt.Sprintf("built %d of %d packages (%d cached)", len(rep.Built), n, len(rep.Cached))
	}
	if elapsed > 0 {
		line += fmt.Sprintf(" in %.2fs", elapsed.Seconds())
	}
	fmt.Fprintln(a.stdout, line)
}
