package buildctl

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/tools/ami"
	"github.com/petrel-os/petrel/tools/image"
	"github.com/petrel-os/petrel/tools/release"
)

type releaseFlags struct {
	ami, noRepo bool
	variants    []string
	out         string
	repo        repoFlags
}

func (a *app) releaseCmd() *cobra.Command {
	var f releaseFlags
	cmd := &cobra.Command{
		Use:   "release",
		Short: "Build every variant of the release, its OVA, SBOMs, update repository and SHA256SUMS into build/releases/",
		Long: "Build everything a release is into build/releases/<version>-<build>/: for each variant of\n" +
			"Twoliter.toml's [release] variants its image with the update images and SBOMs\n" +
			"(images/<arch>-<variant>/), the OVA of a VMware variant, its signed update repository\n" +
			"(repos/<variant>/<arch>/, keys as for buildctl repo), with --ami its AMI for the variants\n" +
			"that have an " + ami.SpecFile + " (as buildctl ami, its options from the spec and the AWS_*\n" +
			"environment), and a SHA256SUMS of every file. release.json there records each step done:\n" +
			"running the command again does only what is missing, so an interrupted or failed release\n" +
			"is resumed by running it again. Prints a table of the steps. See docs/publishing.md.",
		Example: "  # A complete release with development keys (buildctl repo keys makes them)\n" +
			"  buildctl release\n\n" +
			"  # In CI: release keys from the environment, and AMIs\n" +
			"  PUBLISH_KEYS_DIR=/secrets/tuf AWS_PROFILE=release buildctl release --ami\n\n" +
			"  # Only two variants, without the update repository\n" +
			"  buildctl release --variants metal-dev,vmware-dev --no-repo",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.release(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.ami, "ami", false, "also register the AMIs of the variants with an "+ami.SpecFile)
	fl.BoolVar(&f.noRepo, "no-repo", false, "leave out the signed update repositories")
	fl.StringSliceVar(&f.variants, "variants", nil, "variants to release, comma-separated (default: Twoliter.toml release.variants)")
	fl.StringVar(&f.out, "out", "", "directory that holds the release directories (default <build dir>/releases)")
	fl.StringVar(&f.repo.keys, "keys", "", "keys directory of the update repositories (default: "+EnvKeysDir+", else .keys)")
	return cmd
}

func (a *app) release(cmd *cobra.Command, f releaseFlags) error {
	ctx := cmd.Context()
	p, cfg, err := a.loadProject(ctx)
	if err != nil {
		return err
	}
	names := f.variants
	if names == nil {
		names = p.Manifest.Release.Variants
	}
	if len(names) == 0 {
		return badInput{fmt.Errorf("Twoliter.toml: release.variants: no variants to release (or give --variants)")}
	}
	buildID, _, err := image.Identify(ctx, p.Root, a.logger)
	if err != nil {
		return err
	}
	plan := release.Plan{Version: p.Manifest.ReleaseVersion, BuildID: buildID, Arch: cfg.Arch, Root: f.out}
	if plan.Root == "" {
		plan.Root = filepath.Join(cfg.BuildDir, "releases")
	}
	for _, n := range names {
		v, err := p.Variant(n)
		if err != nil {
			return err
		}
		if len(v.SupportedArches) > 0 && !slices.Contains(v.SupportedArches, cfg.Arch) {
			return badInput{fmt.Errorf("variant %s does not support arch %s", n, cfg.Arch)}
		}
		off := map[string]string{}
		if v.ImageFormat != "vmdk" || v.OVFTemplate == "" {
			off[release.StepOVA] = "no vmdk image with an ovf-template"
		}
		if f.noRepo {
			off[release.StepRepo] = "--no-repo"
		}
		if _, err := os.Stat(filepath.Join(v.Dir, ami.SpecFile)); err != nil {
			off[release.StepAMI] = "no " + ami.SpecFile
		} else if !f.ami {
			off[release.StepAMI] = "no --ami"
		}
		plan.Variants = append(plan.Variants, release.Variant{Name: n, Off: off})
	}
	if strings.HasSuffix(buildID, "-dirty") {
		a.logger.Warn("the work tree has uncommitted changes: a resumed release may hold builds of different trees", "build", buildID)
	}
	sum, err := release.Run(ctx, plan, &releaseRunner{a: a, cmd: cmd, f: f}, a.logger)
	if sum != nil {
		sum.Table(a.stdout)
	}
	return err
}

// releaseRunner runs the steps with buildctl's commands, each as a run of
// buildctl for the variant; their own output goes to the log.
type releaseRunner struct {
	a   *app
	cmd *cobra.Command
	f   releaseFlags
}

// sub returns a copy of the app for variant whose output is discarded.
func (r *releaseRunner) sub(variant string) *app {
	s := *r.a
	s.flags.variant = variant
	s.stdout = io.Discard
	return &s
}

func (r *releaseRunner) Image(ctx context.Context, variant string) (string, error) {
	s := r.sub(variant)
	s.keys = r.f.repo.keys // the images trust the keys that sign their repositories
	res, err := s.make(ctx)
	if err != nil {
		return "", err
	}
	return res.Names.Dir, nil
}

func (r *releaseRunner) OVA(ctx context.Context, variant string) (string, error) {
	return r.sub(variant).ova(ctx)
}

func (r *releaseRunner) Repo(ctx context.Context, variant string) (string, error) {
	e, _, _, err := r.sub(variant).publishRepo(r.cmd, r.f.repo)
	if err != nil {
		return "", err
	}
	return e.opts.Dir, nil
}

func (r *releaseRunner) AMI(ctx context.Context, variant string) ([]string, error) {
	s := r.sub(variant)
	p, cfg, err := s.loadProject(ctx)
	if err != nil {
		return nil, err
	}
	v, err := p.Variant(variant)
	if err != nil {
		return nil, err
	}
	job, err := s.prepareAMI(ctx, p, cfg, v, "")
	if err != nil {
		return nil, err
	}
	res, err := s.runAMI(ctx, job)
	if err != nil {
		return nil, err
	}
	return res.Files, nil
}

var _ release.Runner = (*releaseRunner)(nil)
