package buildctl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/tufrepo"
	"github.com/petrel-os/petrel/sources/waves"
	"github.com/petrel-os/petrel/tools/image"
	"github.com/petrel-os/petrel/tools/project"
	"github.com/petrel-os/petrel/tools/repo"
)

// Variables of Makefile.toml [env] and the environment that locate keys
// and policies for `buildctl repo` (flags override them). Relative paths
// are relative to the project root.
const (
	EnvKeysDir          = "PUBLISH_KEYS_DIR"               // default .keys
	EnvRootJSON         = "PUBLISH_ROOT_JSON"              // default <keys>/root.json
	EnvWavePolicy       = "PUBLISH_WAVE_POLICY_PATH"       // default: upstream's default plan
	EnvExpirationPolicy = "PUBLISH_EXPIRATION_POLICY_PATH" // default: 2 weeks, 2 weeks, 1 week
)

// envKey is the variable naming the private key file of role, e.g.
// PUBLISH_TARGETS_KEY (default <keys>/targets.pem).
func envKey(role string) string { return "PUBLISH_" + strings.ToUpper(role) + "_KEY" }

type repoFlags struct {
	keys, waves, expiration, start string
}

// repoEnv is the project and settings a repo command works with.
type repoEnv struct {
	p    *project.Project
	cfg  project.Config
	opts repo.Options
}

// badInput marks an error as bad input (exit 2) without changing its text.
type badInput struct{ error }

func (b badInput) Is(target error) bool { return target == project.ErrInvalidInput }
func (b badInput) Unwrap() error        { return b.error }

func inputErr(err error) error {
	for _, e := range []error{repo.ErrInput, repo.ErrKeys, repo.ErrPublished, repo.ErrPolicy, waves.ErrInvalid, tufrepo.ErrNotRepository} {
		if errors.Is(err, e) {
			return badInput{err}
		}
	}
	return err
}

func (a *app) repoCmd() *cobra.Command {
	var f repoFlags
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "Publish the variant's latest build as a signed update (build/repos/VARIANT/ARCH/)",
		Long: "Add the latest build of the variant to its TUF repository in build/repos/<variant>/<arch>/:\n" +
			"the compressed boot, root and hash images as targets, and the release in manifest.json with\n" +
			"waves from the wave plan; max_version rises to the new version. The repository is created\n" +
			"on first use from the keys directory's root.json. Publishing the same build again changes\n" +
			"nothing; another build of a published version is refused. See docs/updates.md.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			e, v, res, err := a.publishRepo(cmd, f)
			if err != nil {
				return err
			}
			verb := "published"
			if res.Already {
				verb = "already published:"
			}
			fmt.Fprintf(a.stdout, "%s %s %s %s (max_version %s) in %s\n", verb, e.cfg.Variant, e.cfg.Arch, v, res.Update.MaxVersion, e.opts.Dir)
			for _, name := range res.Update.Images.Names() {
				fmt.Fprintf(a.stdout, "  %s\n", name)
			}
			for _, s := range e.p.Migrations {
				for _, f := range s.Files {
					fmt.Fprintf(a.stdout, "  %s %s\n", s.Span, f.Target)
				}
			}
			fmt.Fprintf(a.stdout, "done in %.2fs\n", time.Since(start).Seconds())
			return nil
		},
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.keys, "keys", "", "keys directory (default: "+EnvKeysDir+", else .keys in the project)")
	cmd.Flags().StringVar(&f.waves, "waves", "", "wave plan TOML file (default: "+EnvWavePolicy+", else upstream's default plan)")
	pf.StringVar(&f.expiration, "expiration-policy", "", "expiration policy TOML file (default: "+EnvExpirationPolicy+", else 2w/2w/1w)")
	cmd.Flags().StringVar(&f.start, "start", "", "start time of the waves, RFC 3339 (default: now)")
	cmd.AddCommand(a.repoKeysCmd(&f), a.repoRefreshCmd(&f), a.repoMaxVersionCmd(&f), a.repoValidateCmd(&f))
	return cmd
}

// publishRepo adds the latest build of the variant to its repository.
func (a *app) publishRepo(cmd *cobra.Command, f repoFlags) (*repoEnv, manifest.Version, *repo.Result, error) {
	var v manifest.Version
	e, err := a.repoEnv(cmd, f)
	if err != nil {
		return nil, v, nil, err
	}
	dir, err := image.Latest(e.cfg.BuildDir, e.cfg.Variant, e.cfg.Arch)
	if err != nil {
		return nil, v, nil, badInput{fmt.Errorf("%w (run buildctl make first)", err)}
	}
	v, err = manifest.ParseVersion(e.p.Manifest.ReleaseVersion)
	if err != nil {
		return nil, v, nil, badInput{fmt.Errorf("Twoliter.toml: release-version: %w", err)}
	}
	res, err := repo.Publish(repo.Release{Variant: e.cfg.Variant, Arch: e.cfg.Arch, Version: v, ImageDir: dir,
		Migrations: releaseMigrations(e.p)}, e.opts)
	if err != nil {
		return nil, v, nil, inputErr(err)
	}
	return e, v, &res, nil
}

// setting returns a flag value, else the environment's, else Makefile.toml
// [env]'s, as an absolute path (relative to the project root).
func setting(p *project.Project, flag, env string) string {
	v := flag
	if v == "" {
		v = os.Getenv(env)
	}
	if v == "" {
		v = p.Make.Env[env]
	}
	if v != "" && !filepath.IsAbs(v) {
		v = filepath.Join(p.Root, v)
	}
	return v
}

// publishKeys locates the keys: --keys (flag), else the settings of
// Makefile.toml and the environment, else .keys in the project.
func publishKeys(p *project.Project, flag string) repo.Keys {
	keysDir := setting(p, flag, EnvKeysDir)
	if keysDir == "" {
		keysDir = filepath.Join(p.Root, ".keys")
	}
	keys := repo.Keys{Dir: keysDir, Files: map[string]string{repo.RootFile: setting(p, "", EnvRootJSON)}}
	for _, role := range tufrepo.Roles {
		keys.Files[role] = setting(p, "", envKey(role))
	}
	return keys
}

// trustedRoot returns the root metadata images ship as the trust anchor
// of their updates: the root.json of the keys buildctl repo signs with
// (a.keys, as --keys, else as publishKeys finds them). When there is none and no keys
// are configured (a fresh clone), it creates development keys in .keys,
// saying so on stderr, so that the build works out of the box; configured
// release keys that are missing are an error.
func (a *app) trustedRoot(p *project.Project) ([]byte, error) {
	keys := publishKeys(p, a.keys)
	data, _, err := keys.Root()
	if err == nil {
		return data, nil
	}
	configured := setting(p, a.keys, EnvKeysDir) != "" || setting(p, "", EnvRootJSON) != ""
	if _, serr := os.Stat(keys.Path(repo.RootFile)); configured || !errors.Is(serr, os.ErrNotExist) {
		return nil, inputErr(fmt.Errorf("the image's trusted update root: %w", err))
	}
	if err := repo.CreateKeys(keys.Dir, time.Now()); err != nil {
		return nil, inputErr(err)
	}
	fmt.Fprintf(a.stderr, "buildctl: no update signing keys; created development keys in %s (as `buildctl repo keys` does); "+
		"images built from now on trust them, and `buildctl repo` signs with them\n", keys.Dir)
	data, _, err = keys.Root()
	if err != nil {
		return nil, inputErr(err)
	}
	return data, nil
}

func (a *app) repoEnv(cmd *cobra.Command, f repoFlags) (*repoEnv, error) {
	p, cfg, err := a.loadManifests(cmd.Context())
	if err != nil {
		return nil, err
	}
	if cfg.Variant == "" {
		return nil, badInput{errors.New("no variant: set --variant, BUILDSYS_VARIANT or Makefile.toml env.BUILDSYS_VARIANT")}
	}
	o := repo.Options{Dir: repo.Dir(cfg.BuildDir, cfg.Variant, cfg.Arch), Keys: publishKeys(p, f.keys), Now: time.Now(), Logger: a.logger}
	if path := setting(p, f.waves, EnvWavePolicy); path != "" {
		if o.Plan, err = waves.LoadPlan(path); err != nil {
			return nil, inputErr(err)
		}
	}
	if path := setting(p, f.expiration, EnvExpirationPolicy); path != "" {
		if o.Expiration, err = repo.LoadExpiration(path); err != nil {
			return nil, inputErr(err)
		}
	}
	if f.start != "" {
		if o.Start, err = time.Parse(time.RFC3339, f.start); err != nil {
			return nil, fmt.Errorf("%w: --start: expected an RFC 3339 time such as 2025-03-01T12:00:00Z, got %q", errUsage, f.start)
		}
	}
	return &repoEnv{p: p, cfg: cfg, opts: o}, nil
}

func (a *app) repoKeysCmd(f *repoFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "keys",
		Short: "Create a development root of trust: root.json and ed25519 keys per role",
		Long: "Create root.json (version 1, expiring in 52 weeks) and an ed25519 private key for each role\n" +
			"(root, targets, snapshot, timestamp) in the keys directory (--keys, " + EnvKeysDir + ", else\n" +
			".keys in the project, which git ignores). Existing keys are never overwritten. Images ship\n" +
			"root.json as the trust anchor of their updates. Release keys live elsewhere: name them with\n" +
			EnvKeysDir + " or the PUBLISH_<ROLE>_KEY and " + EnvRootJSON + " variables.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := a.repoEnv(cmd, *f)
			if err != nil {
				return err
			}
			if err := repo.CreateKeys(e.opts.Keys.Dir, e.opts.Now); err != nil {
				return inputErr(err)
			}
			fmt.Fprintf(a.stdout, "created development keys and root.json in %s\n", e.opts.Keys.Dir)
			return nil
		},
	}
}

func (a *app) repoRefreshCmd(f *repoFlags) *cobra.Command {
	var targets bool
	cmd := &cobra.Command{
		Use:   "refresh",
		Short: "Re-sign snapshot and timestamp (and targets with --targets) with new expiry, adding nothing",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := a.repoEnv(cmd, *f)
			if err != nil {
				return err
			}
			if err := repo.Refresh(targets, e.opts); err != nil {
				return inputErr(err)
			}
			fmt.Fprintf(a.stdout, "re-signed %s\n", e.opts.Dir)
			return nil
		},
	}
	cmd.Flags().BoolVar(&targets, "targets", false, "re-sign the targets metadata too")
	return cmd
}

func (a *app) repoMaxVersionCmd(f *repoFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "max-version VERSION",
		Short: "Set max_version of the variant to a published VERSION; lowering it pulls hosts back",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			v, err := manifest.ParseVersion(args[0])
			if err != nil {
				return fmt.Errorf("%w: %w", errUsage, err)
			}
			e, err := a.repoEnv(cmd, *f)
			if err != nil {
				return err
			}
			if err := repo.SetMaxVersion(e.cfg.Variant, e.cfg.Arch, v, e.opts); err != nil {
				return inputErr(err)
			}
			fmt.Fprintf(a.stdout, "max_version of %s %s is %s in %s\n", e.cfg.Variant, e.cfg.Arch, v, e.opts.Dir)
			return nil
		},
	}
}

func (a *app) repoValidateCmd(f *repoFlags) *cobra.Command {
	var rootPath string
	cmd := &cobra.Command{
		Use:   "validate [URL|DIR]",
		Short: "Check a repository as a host would: signatures, expiry, every target's length and hash",
		Long: "Refresh the repository (default: the variant's build/repos/<variant>/<arch>; or the URL of\n" +
			"such a directory) from the trusted root.json with the host's update client, download every\n" +
			"target and check its signed length and hashes, and check manifest.json. Prints the roles'\n" +
			"versions and expiry, warns of roles expiring within 3 days, and names every problem.",
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := a.repoEnv(cmd, *f)
			if err != nil {
				return err
			}
			source := e.opts.Dir
			if len(args) == 1 {
				source = args[0]
			}
			keys := e.opts.Keys
			if rootPath != "" {
				keys.Files[repo.RootFile] = rootPath
			}
			root, _, err := keys.Root()
			if err != nil {
				return inputErr(err)
			}
			rep, err := repo.Validate(cmd.Context(), source, root, e.opts.Now, a.logger)
			if rep != nil {
				for _, r := range rep.Roles {
					fmt.Fprintf(a.stdout, "%-9s version %d, expires %s\n", r.Role, r.Version, r.Expires.Format(time.RFC3339))
				}
				fmt.Fprintf(a.stdout, "%d targets\n", len(rep.Targets))
				for _, w := range rep.Warnings {
					fmt.Fprintf(a.stdout, "warning: %s\n", w)
				}
			}
			if err != nil {
				return inputErr(err)
			}
			fmt.Fprintf(a.stdout, "%s is valid\n", source)
			return nil
		},
	}
	cmd.Flags().StringVar(&rootPath, "root", "", "trusted root.json (default: the keys directory's)")
	return cmd
}
