package project

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ImageFormats returns the valid image-format values.
func ImageFormats() []string { return []string{"raw", "qcow2", "vmdk"} }

// PartitionPlans returns the valid image-layout.partition-plan values.
func PartitionPlans() []string { return []string{"split", "unified"} }

// OSImageSizes returns the valid image-layout.os-image-size-gib values.
func OSImageSizes() []int { return []int{2, 4} }

// Defaults of variant.toml.
const (
	DefaultImageFormat      = "raw"
	DefaultPartitionPlan    = "split"
	DefaultOSImageSizeGiB   = 2
	DefaultDataImageSizeGiB = 1
	DefaultPublishHintGiB   = 22
)

// FeatureDefaults returns the known image features and their defaults.
func FeatureDefaults() map[string]bool {
	return map[string]bool{
		"in-place-updates":     true,
		"host-containers":      true,
		"ext4-root-partition":  false,
		"debug-shell":          false,
		"debug-api":            false,
		"grub-set-private-var": false,
		// Boot with SELinux permissive (enforcing=0) instead of enforcing;
		// for development images only (docs/selinux.md).
		"selinux-permissive": false,
	}
}

// FeaturePackages returns, for the image features that install packages,
// the packages an image with the feature on gets (with their Requires
// closure). An image with the feature off has none of them: they may not
// be listed in included-packages.
func FeaturePackages() map[string][]string {
	return map[string][]string{
		// The API bridge agent (docs/vm.md).
		"debug-api": {"api-bridge"},
	}
}

// Packages returns the packages an image of the variant installs with
// their Requires closure: included-packages, then the packages of its
// image features that are on, in feature name order.
func (v *Variant) Packages() []string {
	pkgs := slices.Clone(v.IncludedPackages)
	fp := FeaturePackages()
	for _, f := range sortedKeys(fp) {
		if v.Feature(f) {
			for _, p := range fp[f] {
				if !slices.Contains(pkgs, p) {
					pkgs = append(pkgs, p)
				}
			}
		}
	}
	return pkgs
}

// Feature reports whether the image feature name is on, applying the
// defaults of FeatureDefaults. An unknown name is off.
func (v *Variant) Feature(name string) bool {
	if on, ok := v.ImageFeatures[name]; ok {
		return on
	}
	return FeatureDefaults()[name]
}

// decodeVariant decodes variant.toml, applies defaults and validates the
// fields that need no other file.
func decodeVariant(file string, data []byte) (*Variant, []error) {
	v := &Variant{}
	errs, ok := decode(file, data, v)
	if !ok {
		return v, errs
	}
	var p problems
	if v.ImageFormat == "" {
		v.ImageFormat = DefaultImageFormat
	} else if !slices.Contains(ImageFormats(), v.ImageFormat) {
		p.addf(file, "image-format: unknown format %q (valid: %s)", v.ImageFormat, strings.Join(ImageFormats(), ", "))
	}
	lay := &v.ImageLayout
	if lay.PartitionPlan == "" {
		lay.PartitionPlan = DefaultPartitionPlan
	} else if !slices.Contains(PartitionPlans(), lay.PartitionPlan) {
		p.addf(file, "image-layout.partition-plan: unknown plan %q (valid: %s)", lay.PartitionPlan, strings.Join(PartitionPlans(), ", "))
	}
	if lay.OSImageSizeGiB == 0 {
		lay.OSImageSizeGiB = DefaultOSImageSizeGiB
	} else if !slices.Contains(OSImageSizes(), lay.OSImageSizeGiB) {
		p.addf(file, "image-layout.os-image-size-gib: expected 2 or 4, got %d", lay.OSImageSizeGiB)
	}
	if lay.DataImageSizeGiB == 0 {
		lay.DataImageSizeGiB = DefaultDataImageSizeGiB
	} else if lay.DataImageSizeGiB < 1 {
		p.addf(file, "image-layout.data-image-size-gib: expected at least 1, got %d", lay.DataImageSizeGiB)
	}
	if lay.PublishImageSizeHintGiB == 0 {
		lay.PublishImageSizeHintGiB = DefaultPublishHintGiB
	} else if lay.PublishImageSizeHintGiB < 1 {
		p.addf(file, "image-layout.publish-image-size-hint-gib: expected at least 1, got %d", lay.PublishImageSizeHintGiB)
	}
	known := FeatureDefaults()
	for _, name := range sortedKeys(v.ImageFeatures) {
		if _, ok := known[name]; !ok {
			p.addf(file, "image-features.%s: unknown feature (valid: %s)", name, strings.Join(sortedKeys(known), ", "))
		}
	}
	if len(v.SupportedArches) == 0 {
		p.addf(file, "supported-arches: missing (valid: %s)", strings.Join(Arches(), ", "))
	}
	for i, a := range v.SupportedArches {
		if !slices.Contains(Arches(), a) {
			p.addf(file, "supported-arches[%d]: unknown architecture %q (valid: %s)", i, a, strings.Join(Arches(), ", "))
		}
	}
	if len(v.Kits) == 0 {
		p.addf(file, "kits: missing (a variant needs at least one kit)")
	}
	for i, k := range v.KernelParameters {
		if strings.TrimSpace(k) == "" || strings.ContainsAny(k, "\n\r") {
			p.addf(file, "kernel-parameters[%d]: expected a non-empty parameter on one line, got %q", i, k)
		}
	}
	if dup := firstDuplicate(v.IncludedPackages); dup != "" {
		p.addf(file, "included-packages: %q is listed twice", dup)
	}
	return v, append(errs, p.errs...)
}

// checkVariant validates the references of a variant to kits, packages and
// its OVF template.
func (l *loader) checkVariant(file string, v *Variant) {
	for i, k := range v.Kits {
		if _, ok := l.p.Kits[k]; !ok {
			l.probs.addf(file, "kits[%d]: unknown kit %q (no kits/%s/kit.toml)", i, k, k)
		}
	}
	inKits := func(pkg string) bool {
		return slices.ContainsFunc(v.Kits, func(k string) bool {
			kit, ok := l.p.Kits[k]
			return ok && slices.Contains(kit.Packages, pkg)
		})
	}
	for i, pkg := range v.IncludedPackages {
		if !inKits(pkg) {
			l.probs.addf(file, "included-packages[%d]: package %q is not in any kit of the variant (%s)", i, pkg, strings.Join(v.Kits, ", "))
		}
	}
	fp := FeaturePackages()
	for _, f := range sortedKeys(fp) {
		for _, pkg := range fp[f] {
			if i := slices.Index(v.IncludedPackages, pkg); i >= 0 && !v.Feature(f) {
				l.probs.addf(file, "included-packages[%d]: package %q comes only with image feature %s (set image-features.%s = true instead)", i, pkg, f, f)
			}
			if v.Feature(f) && !inKits(pkg) {
				l.probs.addf(file, "image-features.%s: needs package %q, which is not in any kit of the variant (%s)", f, pkg, strings.Join(v.Kits, ", "))
			}
		}
	}
	if v.ImageFormat == "vmdk" && v.OVFTemplate == "" {
		l.probs.addf(file, "ovf-template: required when image-format is \"vmdk\"")
	}
	if v.OVFTemplate != "" {
		p := filepath.Join(v.Dir, filepath.FromSlash(v.OVFTemplate))
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			l.probs.addf(file, "ovf-template: file %q does not exist", v.OVFTemplate)
		}
	}
}

// String describes the variant for logs.
func (v *Variant) String() string {
	return fmt.Sprintf("%s (%s, %s)", v.Name, v.ImageFormat, v.ImageLayout.PartitionPlan)
}
