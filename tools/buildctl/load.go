package buildctl

import (
	"context"
	"os"

	"github.com/petrel-os/petrel/tools/project"
)

// loadProject finds, loads and validates the project and returns it with
// the effective configuration (Makefile.toml < BUILDSYS_* < flags).
func (a *app) loadProject(ctx context.Context) (*project.Project, project.Config, error) {
	return a.load(ctx, project.Load)
}

// loadManifests is loadProject for commands that need only Twoliter.toml
// and Makefile.toml (setup, task): they work while a package is broken.
func (a *app) loadManifests(ctx context.Context) (*project.Project, project.Config, error) {
	return a.load(ctx, project.LoadManifests)
}

// load finds the project root, reads it with load and works out the
// effective configuration.
func (a *app) load(ctx context.Context, load func(context.Context, string) (*project.Project, error)) (*project.Project, project.Config, error) {
	root, err := findProjectRoot(a.flags.projectDir)
	if err != nil {
		return nil, project.Config{}, err
	}
	p, err := load(ctx, root)
	if err != nil {
		return nil, project.Config{}, err
	}
	cfg, err := p.Config(os.Getenv, a.overrides())
	if err != nil {
		return nil, project.Config{}, err
	}
	return p, cfg, nil
}

func (a *app) overrides() project.Overrides {
	return project.Overrides{Variant: a.flags.variant, Arch: a.flags.arch, Jobs: a.flags.jobs}
}
