package image

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/petrel-os/petrel/tools/sbom"
)

// SBOM file suffixes: SPDX 2.3 JSON and CycloneDX 1.5 JSON beside the image.
const (
	SuffixSPDX      = ".spdx.json"
	SuffixCycloneDX = ".cdx.json"
)

// collectSBOM records what the staged root holds while its RPM database
// is still there: the installed packages and the Go binaries.
func (a *assembly) collectSBOM(ctx context.Context) error {
	pkgs, err := sbom.Packages(ctx, a.root, rpmDBPath, a.in.RPMs, a.in.Project)
	if err != nil {
		return err
	}
	bins, err := sbom.Binaries(ctx, a.root, rpmDBPath)
	if err != nil {
		return err
	}
	m := a.in.Project.Manifest
	a.sbom = &sbom.Document{Name: a.names.Prefix, Created: time.Unix(a.in.Epoch, 0).UTC(), Packages: pkgs, Binaries: bins,
		OS: sbom.OS{ID: m.OS.Name, PrettyName: m.OS.PrettyName, Vendor: m.OS.Vendor, HomeURL: m.OS.HomeURL,
			Variant: a.in.Variant.Name, Arch: a.in.Config.Arch, Version: m.ReleaseVersion, BuildID: a.in.BuildID}}
	return nil
}

// writeSBOM hashes the finished outputs and writes the SBOMs beside them.
func (a *assembly) writeSBOM(context.Context) error {
	arts, err := sbom.Artifacts(a.stage, func(name string) bool {
		return !strings.HasSuffix(name, SuffixSPDX) && !strings.HasSuffix(name, SuffixCycloneDX)
	})
	if err != nil {
		return err
	}
	a.sbom.Artifacts = arts
	for _, f := range []struct {
		suffix string
		encode func(sbom.Document) ([]byte, error)
	}{{SuffixSPDX, sbom.SPDX}, {SuffixCycloneDX, sbom.CycloneDX}} {
		data, err := f.encode(*a.sbom)
		if err != nil {
			return err
		}
		if err := writeTreeFile(filepath.Join(a.stage, a.names.Prefix+f.suffix), data); err != nil {
			return fmt.Errorf("write SBOM: %w", err)
		}
	}
	return nil
}
