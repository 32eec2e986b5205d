package image

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"

	"github.com/petrel-os/petrel/sources/imagecodec"
	"github.com/petrel-os/petrel/tools/compress"
	"github.com/petrel-os/petrel/tools/project"
	"github.com/petrel-os/petrel/tools/qcow2"
	"github.com/petrel-os/petrel/tools/vmdk"
)

// Update-image suffixes: the three parts of a bank an update writes.
const (
	SuffixBootImage = "-boot.ext4" + imagecodec.Ext
	SuffixHashImage = "-root.verity" + imagecodec.Ext
)

// rootSuffix names the root update image after its filesystem.
func rootSuffix(fs string) string { return "-root." + fs + imagecodec.Ext }

// writeUpdateImages compresses the bank images (boot, root, hash).
func (a *assembly) writeUpdateImages(ctx context.Context, p *partitionImages) error {
	for _, c := range []struct{ src, suffix string }{
		{p.boot, SuffixBootImage}, {p.root, rootSuffix(p.rootFS)}, {p.hash, SuffixHashImage},
	} {
		if err := compress.CompressFile(ctx, c.src, filepath.Join(a.stage, a.names.Prefix+c.suffix), imagecodec.LevelDefault); err != nil {
			return fmt.Errorf("write update image: %w", err)
		}
	}
	return nil
}

// writeFormat converts the raw disks to the variant's format. The raw image
// is always kept: `buildctl boot` and the update tooling use it.
func (a *assembly) writeFormat(ctx context.Context) error {
	format := a.in.Variant.ImageFormat
	switch format {
	case "", "raw":
		return nil
	case "qcow2":
		for _, raw := range a.disks() {
			if err := qcow2.Convert(ctx, raw, trimExt(raw)+".qcow2"); err != nil {
				return fmt.Errorf("convert %s to qcow2: %w", filepath.Base(raw), err)
			}
		}
		return nil
	case "vmdk":
		for _, raw := range a.disks() {
			if err := writeVMDK(ctx, raw, trimExt(raw)+".vmdk", a.seed); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%w: %s: image-format: unknown format %q (valid: %v)", project.ErrInvalidInput, a.in.Variant.Path, format, project.ImageFormats())
}

func (a *assembly) disks() []string {
	d := []string{a.result.Image}
	if a.result.DataImage != "" {
		d = append(d, a.result.DataImage)
	}
	return d
}

func trimExt(p string) string { return p[:len(p)-len(filepath.Ext(p))] }

func writeVMDK(ctx context.Context, raw, out string, seed []byte) error {
	cid := crc32.ChecksumIEEE(append(append([]byte{}, seed...), filepath.Base(out)...))
	if err := vmdk.ConvertFile(ctx, raw, out, vmdk.Options{CID: cid}); err != nil {
		return fmt.Errorf("convert %s to vmdk: %w", filepath.Base(raw), err)
	}
	return nil
}

// publish moves the finished files into the versioned output directory and
// points "latest" at it. An earlier build of the same version is replaced
// only now, after everything succeeded.
func (a *assembly) publish(context.Context) error {
	entries, err := os.ReadDir(a.stage)
	if err != nil {
		return fmt.Errorf("list staged outputs: %w", err)
	}
	if err := publishDir(a.stage, a.names.Dir); err != nil {
		return err
	}
	for _, e := range entries {
		a.result.Artifacts = append(a.result.Artifacts, filepath.Join(a.names.Dir, e.Name()))
	}
	sort.Strings(a.result.Artifacts)
	rebase := func(p string) string {
		if p == "" {
			return ""
		}
		return filepath.Join(a.names.Dir, filepath.Base(p))
	}
	a.result.Image, a.result.DataImage = rebase(a.result.Image), rebase(a.result.DataImage)
	return replaceLink(filepath.Base(a.names.Dir), filepath.Join(a.names.VariantDir, "latest"))
}

// publishDir puts the complete directory stage in place as dir. An earlier
// build in dir (the same commit built again) is exchanged with stage in
// one step (renameat2 RENAME_EXCHANGE) and then removed, so that dir, and
// the "latest" link that may point at it, always name a complete build:
// the old one until the exchange, the new one after it. When the exchange
// fails, dir keeps the old build. On a file system without
// RENAME_EXCHANGE the old build is renamed aside first and put back if
// the new one cannot take its place.
func publishDir(stage, dir string) error {
	if _, err := os.Lstat(stage); err != nil {
		return fmt.Errorf("publish image directory: %w", err)
	}
	err := unix.Renameat2(unix.AT_FDCWD, stage, unix.AT_FDCWD, dir, unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		// stage now holds the earlier build.
		if err := os.RemoveAll(stage); err != nil {
			return fmt.Errorf("remove the earlier build of %s: %w", dir, err)
		}
		return nil
	case errors.Is(err, unix.ENOENT):
		// No earlier build.
		if err := unix.Renameat2(unix.AT_FDCWD, stage, unix.AT_FDCWD, dir, unix.RENAME_NOREPLACE); err != nil {
			return fmt.Errorf("publish image directory %s: %w", dir, err)
		}
		return nil
	case !errors.Is(err, unix.EINVAL):
		return fmt.Errorf("publish image directory %s: exchange it with the earlier build: %w", dir, err)
	}
	old := dir + ".old"
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("publish image directory %s: %w", dir, err)
	}
	if err := os.Rename(dir, old); err != nil {
		return fmt.Errorf("publish image directory %s: move the earlier build aside: %w", dir, err)
	}
	if err := os.Rename(stage, dir); err != nil {
		if rerr := os.Rename(old, dir); rerr != nil {
			return fmt.Errorf("publish image directory %s: %w (and putting the earlier build back failed: %w)", dir, err, rerr)
		}
		return fmt.Errorf("publish image directory %s: %w", dir, err)
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("remove the earlier build of %s: %w", dir, err)
	}
	return nil
}
