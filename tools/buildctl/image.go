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

	"github.com/petrel-os/petrel/tools/image"
	"github.com/petrel-os/petrel/tools/ova"
	"github.com/petrel-os/petrel/tools/project"
)

func (a *app) makeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "make",
		Short: "Build the variant's packages and assemble its disk image (build/images/ARCH-VARIANT/)",
		Long: "Build whatever the variant needs that is missing or changed, then assemble its disk image,\n" +
			"update images and image format into build/images/<arch>-<variant>/<version>-<build>/ and\n" +
			"point the latest link at it. The variant and arch come from --variant/--arch, BUILDSYS_VARIANT/\n" +
			"BUILDSYS_ARCH or Makefile.toml, in that order. The image trusts the update repository's root.json\n" +
			"(the keys of buildctl repo; development keys are created in .keys when none are configured).\n" +
			"Needs root (rpm installs files owned by root).",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			start := time.Now()
			res, err := a.make(cmd.Context())
			if err != nil {
				return err
			}
			root := filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(res.Names.Dir))))
			for _, f := range res.Artifacts {
				if r, err := filepath.Rel(root, f); err == nil {
					f = r
				}
				fmt.Fprintln(a.stdout, f)
			}
			var steps []string
			for _, s := range res.Steps {
				steps = append(steps, fmt.Sprintf("%s %.2fs", s.Name, s.Duration.Seconds()))
			}
			fmt.Fprintf(a.stdout, "image steps: %s\n", strings.Join(steps, ", "))
			fmt.Fprintf(a.stdout, "root filesystem %.1f MiB, verity root hash %s\n", float64(res.RootBytes)/(1<<20), res.RootHash)
			fmt.Fprintf(a.stdout, "made %s in %.2fs\n", res.Names.Prefix, time.Since(start).Seconds())
			return nil
		},
	}
}

// make builds the variant's closure and assembles its image.
func (a *app) make(ctx context.Context) (*image.Result, error) {
	b, g, err := a.newBuilder(ctx)
	if err != nil {
		return nil, err
	}
	p, cfg := b.Project, b.Config
	v, err := p.Variant(cfg.Variant)
	if err != nil {
		return nil, err
	}
	root, err := a.trustedRoot(p)
	if err != nil {
		return nil, err
	}
	if len(v.SupportedArches) > 0 && !slices.Contains(v.SupportedArches, cfg.Arch) {
		return nil, fmt.Errorf("%w: variant %s does not support arch %s (supported-arches: %s)",
			project.ErrInvalidInput, v.Name, cfg.Arch, strings.Join(v.SupportedArches, ", "))
	}
	closure, err := g.Closure(v.Packages()...)
	if err != nil {
		return nil, err
	}
	rep, err := b.Build(ctx, closure)
	if err != nil {
		return nil, err
	}
	a.printReport(rep, 0)
	var rpms []string
	for _, pkg := range closure {
		r, err := b.RPMs(pkg)
		if err != nil {
			return nil, err
		}
		rpms = append(rpms, r...)
	}
	buildID, epoch, err := image.Identify(ctx, p.Root, a.logger)
	if err != nil {
		return nil, err
	}
	return image.Make(ctx, image.Inputs{
		Project: p, Config: cfg, Variant: v, RPMs: rpms, BuildID: buildID, Epoch: epoch, TrustedRoot: root, Logger: a.logger,
	})
}

func (a *app) ovaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ova",
		Short: "Pack the variant's latest vmdk image into an OVA for VMware",
		Long: "Pack the latest build of a vmdk variant into <prefix>.ova beside it: the OVF rendered from\n" +
			"the variant's ovf-template with the disk sizes filled in, a SHA-256 manifest, then the disks.",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := a.ova(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, out)
			return nil
		},
	}
}

func (a *app) ova(ctx context.Context) (string, error) {
	p, cfg, err := a.loadProject(ctx)
	if err != nil {
		return "", err
	}
	v, err := p.Variant(cfg.Variant)
	if err != nil {
		return "", err
	}
	if v.ImageFormat != "vmdk" || v.OVFTemplate == "" {
		return "", fmt.Errorf("%w: variant %s: an OVA needs image-format = \"vmdk\" and an ovf-template (have %q)",
			project.ErrInvalidInput, v.Name, v.ImageFormat)
	}
	dir, err := image.Latest(cfg.BuildDir, v.Name, cfg.Arch)
	if err != nil {
		return "", fmt.Errorf("%w: %w (run buildctl make first)", project.ErrInvalidInput, err)
	}
	osImg, dataImg, err := image.FindDiskImage(dir)
	if err != nil {
		return "", fmt.Errorf("%w: %w", project.ErrInvalidInput, err)
	}
	tmplPath := filepath.Join(v.Dir, v.OVFTemplate)
	tmpl, err := os.ReadFile(tmplPath)
	if err != nil {
		return "", fmt.Errorf("read OVF template: %w", err)
	}
	osGiB, dataGiB := publishSizes(v)
	disks := []ova.Disk{{Path: strings.TrimSuffix(osImg, ".img") + ".vmdk", SizeGiB: osGiB}}
	if dataImg != "" {
		disks = append(disks, ova.Disk{Path: strings.TrimSuffix(dataImg, ".img") + ".vmdk", SizeGiB: dataGiB})
	}
	for _, d := range disks {
		if _, err := os.Stat(d.Path); err != nil {
			return "", fmt.Errorf("%w: find vmdk of the latest build: %w", project.ErrInvalidInput, err)
		}
	}
	_, epoch, err := image.Identify(ctx, p.Root, a.logger)
	if err != nil {
		return "", err
	}
	out := strings.TrimSuffix(osImg, ".img") + ".ova"
	rel, _ := filepath.Rel(p.Root, tmplPath)
	if err := ova.Pack(ctx, out, tmpl, disks, ova.Options{TemplateName: rel, ModTime: time.Unix(epoch, 0).UTC()}); err != nil {
		return "", err
	}
	return out, nil
}

// publishSizes follows upstream: split → the OS disk keeps its size and the
// data disk takes the rest of max(hint, os+data); unified → one disk of
// max(hint, os+data).
func publishSizes(v *project.Variant) (osGiB, dataGiB int64) {
	l := v.ImageLayout
	total := int64(max(l.PublishImageSizeHintGiB, l.OSImageSizeGiB+l.DataImageSizeGiB))
	if l.PartitionPlan == "unified" {
		return total, 0
	}
	return int64(l.OSImageSizeGiB), total - int64(l.OSImageSizeGiB)
}
