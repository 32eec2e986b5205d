package ociimage

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/petrel-os/petrel/tools/image"
)

// Stage installs rpms into the empty directory tree as an image's file
// system: rpm's database is removed and the packages' factory /etc
// (/usr/share/factory/etc, which a host copies into its tmpfs /etc at
// boot) becomes /etc.
func Stage(ctx context.Context, tree string, rpms []string) error {
	if err := image.InstallRPMs(ctx, tree, rpms); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(tree, image.RPMDBPath)); err != nil {
		return fmt.Errorf("remove the rpm database from %s: %w", tree, err)
	}
	factory := filepath.Join(tree, "usr/share/factory/etc")
	if _, err := os.Stat(factory); err == nil {
		etc := filepath.Join(tree, "etc")
		if err := os.MkdirAll(etc, 0o755); err != nil {
			return fmt.Errorf("make /etc of %s: %w", tree, err)
		}
		// cp -a keeps modes, owners and links, as the initramfs's copy does.
		if out, err := exec.CommandContext(ctx, "cp", "-a", factory+"/.", etc+"/").CombinedOutput(); err != nil {
			return fmt.Errorf("copy factory /etc in %s: %w: %s", tree, err, out)
		}
	}
	return nil
}

// Result is what Make wrote.
type Result struct {
	Layout *Layout
	// Tree is the staged file system, kept for inspection.
	Tree string
}

// Make stages rpms under dir/rootfs and writes the image's OCI layout to
// dir/layout, replacing what an earlier run left there.
func Make(ctx context.Context, d *Definition, rpms []string, dir string, epoch time.Time, refName string) (*Result, error) {
	tree, layoutDir := filepath.Join(dir, "rootfs"), filepath.Join(dir, "layout")
	for _, p := range []string{tree, layoutDir} {
		if err := os.RemoveAll(p); err != nil {
			return nil, fmt.Errorf("clear %s: %w", p, err)
		}
	}
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return nil, fmt.Errorf("make %s: %w", tree, err)
	}
	if err := Stage(ctx, tree, rpms); err != nil {
		return nil, err
	}
	l, err := WriteLayout(layoutDir, tree, d, epoch, refName)
	if err != nil {
		return nil, err
	}
	return &Result{Layout: l, Tree: tree}, nil
}
