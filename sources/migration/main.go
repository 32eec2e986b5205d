package migration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/sources/api"
	"github.com/petrel-os/petrel/sources/cli"
	"github.com/petrel-os/petrel/sources/manifest"
	"github.com/petrel-os/petrel/sources/settings"
	"github.com/petrel-os/petrel/sources/updater"
)

// Default paths of the migrator's inputs on a host: what the update agent
// (sources/updater) saves for it on PRIVATE before it marks a new bank
// valid: the metadata of the refresh that chose the update
// (updater.Repo.SaveMetadata) and manifest.json with the migrations
// between the two versions (updater.Repo.Prefetch). The trusted root
// ships in the image.
const (
	DefaultRootPath     = updater.DefaultRootPath
	DefaultMetadataDir  = updater.DefaultMigratorMetadataDir
	DefaultMigrationDir = updater.DefaultMigratorTargetsDir
	DefaultOSRelease    = api.DefaultOSRelease
)

type options struct {
	datastore, root, metadata, migrations, osRelease, version, logLevel string
	fromOSRelease                                                       bool
}

// Main is the migrator agent: it brings the datastore to the OS version
// (see Run). Exit codes: 0 done (or nothing to do), 1 failure (the
// datastore is unchanged and the unit fails, so the boot is not marked
// successful), 2 usage.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Run(ctx, command(stderr), args, stdout, stderr)
}

func command(stderr io.Writer) *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "migrator",
		Short: "Migrate the settings datastore to the OS version",
		Long: "Migrate the settings datastore forward or backward to the OS version with the migrations\n" +
			"of the signed manifest, into a new datastore directory, then move the link chain to it.\n" +
			"Nothing is fetched: the manifest and the migrations come from the update agent's\n" +
			"metadata cache and migration directory. See docs/migrations.md.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := cli.NewLogger(stderr, o.logLevel, "migrator")
			if err != nil {
				return err
			}
			return run(cmd.Context(), o, cmd.OutOrStdout(), log)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.datastore, "datastore-path", filepath.Join(settings.DefaultDatastoreBase, "current"), "the datastore's current link; its directory is the datastore base")
	f.StringVar(&o.version, "migrate-to-version", "", "version X.Y.Z to migrate to")
	f.BoolVar(&o.fromOSRelease, "migrate-to-version-from-os-release", false, "migrate to VERSION_ID of --os-release")
	f.StringVar(&o.osRelease, "os-release", DefaultOSRelease, "os-release file giving VERSION_ID")
	f.StringVar(&o.root, "root-path", DefaultRootPath, "trusted TUF root metadata shipped in the image")
	f.StringVar(&o.metadata, "metadata-directory", DefaultMetadataDir, "the update agent's verified TUF metadata cache")
	f.StringVar(&o.migrations, "migration-directory", DefaultMigrationDir, "the manifest and migrations the update agent saved (<sha256>.<name>)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.MarkFlagsOneRequired("migrate-to-version", "migrate-to-version-from-os-release")
	cmd.MarkFlagsMutuallyExclusive("migrate-to-version", "migrate-to-version-from-os-release")
	return cmd
}

func run(ctx context.Context, o options, stdout io.Writer, log *slog.Logger) error {
	v := o.version
	if o.fromOSRelease {
		var err error
		if v, err = osReleaseVersion(o.osRelease); err != nil {
			return err
		}
	}
	to, err := manifest.ParseVersion(v)
	if err != nil {
		return cli.Usagef("version to migrate to: %w", err)
	}
	// The root is needed only when the datastore needs migrations.
	var src Source
	if root, err := os.ReadFile(o.root); err == nil {
		src = &TUFSource{Config: updater.Config{
			MetadataURL: (&url.URL{Scheme: "file", Path: o.metadata}).String(),
			TargetsURL:  (&url.URL{Scheme: "file", Path: o.migrations}).String(),
			TrustedRoot: root,
			CacheDir:    o.metadata,
			// Local files: a retry would read the same bytes again.
			Fetch:  updater.FetchOptions{Tries: 1},
			Logger: log,
		}}
	} else {
		src = missingRoot{path: o.root, err: err}
	}
	cfg := Config{Base: filepath.Dir(o.datastore), To: to, Source: src, Logger: log}
	res, err := Run(ctx, cfg)
	if err != nil {
		return err
	}
	switch {
	case res.From == "":
		_, err = fmt.Fprintln(stdout, "no datastore yet: nothing to migrate")
	case res.From == res.To && res.Migrations == nil:
		_, err = fmt.Fprintf(stdout, "datastore already at %s\n", res.To)
	case res.Relinked:
		_, err = fmt.Fprintf(stdout, "datastore %s relinked from %s to %s (no migrations)\n", res.Dir, res.From, res.To)
	default:
		_, err = fmt.Fprintf(stdout, "datastore migrated %s from %s to %s with %d migrations into %s\n",
			res.Direction, res.From, res.To, len(res.Migrations), res.Dir)
	}
	return err
}

// missingRoot is the Source when the trusted root cannot be read: the
// migrator fails only if it needs a migration.
type missingRoot struct {
	path string
	err  error
}

func (m missingRoot) Manifest(context.Context) (*manifest.Manifest, error) {
	return nil, fmt.Errorf("read trusted root %s: %w", m.path, m.err)
}

func (m missingRoot) Migration(context.Context, string) ([]byte, error) {
	return nil, fmt.Errorf("read trusted root %s: %w", m.path, m.err)
}

// osReleaseVersion returns VERSION_ID of an os-release file.
func osReleaseVersion(path string) (string, error) {
	o, err := api.ReadOSRelease(path)
	if err != nil {
		return "", fmt.Errorf("read os-release: %w", err)
	}
	if o.VersionID == "" {
		return "", fmt.Errorf("read os-release %s: no VERSION_ID", path)
	}
	return o.VersionID, nil
}
