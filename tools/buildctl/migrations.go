package buildctl

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/tools/project"
	"github.com/petrel-os/petrel/tools/repo"
)

// releaseMigrations returns the release chain's migrations as repo
// publishes them.
func releaseMigrations(p *project.Project) map[manifest.Span][]repo.Migration {
	out := map[manifest.Span][]repo.Migration{}
	for _, s := range p.Migrations {
		files := []repo.Migration{}
		for _, f := range s.Files {
			files = append(files, repo.Migration{Target: f.Target, Path: f.Path})
		}
		out[s.Span] = files
	}
	return out
}

func (a *app) migrationsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "migrations",
		Short: "List the settings migrations of each release step (Twoliter.toml [migrations]), checked",
		Long: "Load Twoliter.toml and the migration files it lists under " + project.MigrationsDir + "/v<TO>/, check them\n" +
			"(format, reversibility, the settings model of each version, no gap in the chain up to\n" +
			"release-version, no unlisted file) and list each step with its migrations. Every buildctl\n" +
			"command makes the same checks. See docs/migrations.md.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, _, err := a.loadManifests(cmd.Context())
			if err != nil {
				return err
			}
			if len(p.Migrations) == 0 {
				_, err := fmt.Fprintf(a.stdout, "no migrations: hosts can move only between builds of %s\n", p.Manifest.ReleaseVersion)
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STEP\tMIGRATION\tOPERATIONS\tDESCRIPTION")
			for _, s := range p.Migrations {
				if len(s.Files) == 0 {
					fmt.Fprintf(tw, "%s\t-\t\t\n", s.Span)
				}
				for _, f := range s.Files {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", s.Span, f.Target, len(f.Migration.Operations), f.Migration.Description)
				}
			}
			return tw.Flush()
		},
	}
}
