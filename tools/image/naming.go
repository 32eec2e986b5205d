package image

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Names are the output locations of one image build, following upstream's
// scheme with the project's OS name:
// build/images/<arch>-<variant>/<version>-<build>/<os>-<variant>-<arch>-<version>-<build>.img
type Names struct {
	// VariantDir is build/images/<arch>-<variant>; it holds the "latest" link.
	VariantDir string
	// Dir is VariantDir/<version>-<build>.
	Dir string
	// Prefix is <os>-<variant>-<arch>-<version>-<build>.
	Prefix string
}

// NewNames returns the names for one build.
func NewNames(buildDir, osName, variant, arch, version, buildID string) Names {
	vd := filepath.Join(buildDir, "images", arch+"-"+variant)
	return Names{
		VariantDir: vd,
		Dir:        filepath.Join(vd, version+"-"+buildID),
		Prefix:     strings.Join([]string{osName, variant, arch, version, buildID}, "-"),
	}
}

// Path returns Dir/Prefix+suffix, e.g. Path(".img").
func (n Names) Path(suffix string) string { return filepath.Join(n.Dir, n.Prefix+suffix) }

// Latest returns the directory the "latest" link points to.
func Latest(buildDir, variant, arch string) (string, error) {
	link := filepath.Join(buildDir, "images", arch+"-"+variant, "latest")
	dir, err := filepath.EvalSymlinks(link)
	if err != nil {
		return "", fmt.Errorf("find latest image of variant %q (%s): %w", variant, link, err)
	}
	return dir, nil
}

// FindDiskImage returns the raw OS disk image in an image directory (the
// file ending in .img that is not the data disk) and the data disk if any.
func FindDiskImage(dir string) (osImage, dataImage string, err error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*.img"))
	if err != nil {
		return "", "", fmt.Errorf("list images in %q: %w", dir, err)
	}
	for _, m := range matches {
		if strings.HasSuffix(m, "-data.img") {
			dataImage = m
		} else if osImage == "" {
			osImage = m
		}
	}
	if osImage == "" {
		return "", "", fmt.Errorf("find disk image in %q: no *.img file", dir)
	}
	return osImage, dataImage, nil
}

// replaceLink points link at target (a relative name) atomically: it makes
// the new link under a temporary name of its own and renames it over link,
// so readers see the old target or the new one, never no link.
func replaceLink(target, link string) error {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return fmt.Errorf("replace link %q: %w", link, err)
	}
	tmp := fmt.Sprintf("%s.tmp-%x", link, rnd)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("create link %q: %w", tmp, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace link %q: %w", link, err)
	}
	return nil
}
