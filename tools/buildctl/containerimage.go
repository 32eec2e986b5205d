package buildctl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/petrel-os/petrel/tools/image"
	"github.com/petrel-os/petrel/tools/ociimage"
)

func (a *app) containerImageCmd() *cobra.Command {
	var name, push, archive string
	var insecure bool
	cmd := &cobra.Command{
		Use:   "container-image --name NAME [--push REF] [--oci-archive FILE]",
		Short: "Build a host-container image (packages/NAME-container/image.toml) as an OCI image; push it or write an OCI archive",
		Long: "Build the packages of packages/NAME-container/image.toml and make an OCI image of their closure:\n" +
			"one layer, every timestamp SOURCE_DATE_EPOCH (HEAD's commit time), so the same commit gives the\n" +
			"same digest. The OCI layout goes to build/container-images/NAME/layout. --push REF uploads it to\n" +
			"a registry (plain HTTP for loopback registries, or any with --insecure; credentials from\n" +
			"BUILDCTL_REGISTRY_USERNAME and BUILDCTL_REGISTRY_PASSWORD); --oci-archive FILE writes it as an OCI\n" +
			"archive, which a host imports with a source of oci-archive:/path. Needs root (rpm).",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return fmt.Errorf("%w: --name is required", errUsage)
			}
			ctx := cmd.Context()
			start := time.Now()
			b, g, err := a.newBuilder(ctx)
			if err != nil {
				return err
			}
			p := b.Project
			def, err := ociimage.Load(p.Root, name)
			if err != nil {
				return err
			}
			closure, err := g.Closure(def.Packages...)
			if err != nil {
				return err
			}
			rep, err := b.Build(ctx, closure)
			if err != nil {
				return err
			}
			a.printReport(rep, 0)
			var rpms []string
			for _, pkg := range closure {
				r, err := b.RPMs(pkg)
				if err != nil {
					return err
				}
				rpms = append(rpms, r...)
			}
			_, epoch, err := image.Identify(ctx, p.Root, a.logger)
			if err != nil {
				return err
			}
			refName := push
			if refName == "" {
				refName = "petrel/" + name + ":" + p.Manifest.ReleaseVersion
			}
			res, err := ociimage.Make(ctx, def, rpms, filepath.Join(b.Config.BuildDir, "container-images", name), time.Unix(epoch, 0), refName)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "image %s: manifest %s (%d packages)\n", name, res.Layout.Manifest.Digest, len(closure))
			if archive != "" {
				if err := writeArchive(res.Layout, archive, time.Unix(epoch, 0)); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "wrote OCI archive %s\n", archive)
			}
			if push != "" {
				d, err := ociimage.Push(ctx, res.Layout, push, insecure, ociimage.Credentials{
					Username: os.Getenv("BUILDCTL_REGISTRY_USERNAME"), Password: os.Getenv("BUILDCTL_REGISTRY_PASSWORD")})
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "pushed %s@%s\n", push, d)
			}
			fmt.Fprintf(a.stdout, "made container image %s in %.2fs\n", name, time.Since(start).Seconds())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "image to build: NAME of packages/NAME-container/image.toml (admin, control)")
	f.StringVar(&push, "push", "", "push the image to this reference, e.g. 127.0.0.1:5000/petrel/admin:v0.1.0")
	f.StringVar(&archive, "oci-archive", "", "write the image as an OCI archive to this file")
	f.BoolVar(&insecure, "insecure", false, "allow plain HTTP to the registry of --push")
	return cmd
}

// writeArchive writes the layout as an OCI archive to path atomically.
func writeArchive(l *ociimage.Layout, path string, epoch time.Time) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write OCI archive: %w", err)
	}
	err = tmp.Chmod(0o644)
	if err == nil {
		err = ociimage.WriteArchive(l.Dir, epoch, tmp)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return errors.Join(fmt.Errorf("write OCI archive %s", path), err)
	}
	return nil
}
