package buildctl

import "github.com/spf13/cobra"

// commands returns every subcommand of buildctl. Each lives in its own file.
func (a *app) commands() []*cobra.Command {
	return []*cobra.Command{
		a.buildPackageCmd(),   // build.go
		a.buildKitCmd(),       // build.go
		a.cleanCmd(),          // build.go
		a.listCmd(),           // list.go
		a.graphCmd(),          // list.go
		a.setupCmd(),          // setup.go
		a.taskCmd(),           // setup.go
		a.makeCmd(),           // image.go
		a.ovaCmd(),            // image.go
		a.containerImageCmd(), // containerimage.go
		a.bootCmd(),           // boot.go
		a.repoCmd(),           // repo.go
		a.migrationsCmd(),     // migrations.go
		a.amiCmd(),            // ami.go
		a.releaseCmd(),        // release.go
	}
}
