// Package sbom describes what an image is made of, as software bills of
// materials in the two formats scanners read: SPDX 2.3 JSON (written with
// spdx/tools-golang) and CycloneDX 1.5 JSON (written with cyclonedx-go).
// Each lists every installed RPM (name, version, licence, the RPM file's
// SHA-256) with the upstream files it was built from as package.toml pins
// them (URL or the Debian package and version it repackages, with their
// SHA-512), every Go module compiled into the image's Go binaries (read
// from the binaries' build info, with the Go toolchain as the stdlib
// module), and the image's own artifacts with their SHA-256.
//
// The documents are reproducible: everything is sorted, the creation time
// is SOURCE_DATE_EPOCH, and the SPDX namespace and the CycloneDX serial
// number are derived from the content, so that the same commit gives the
// same bytes.
package sbom

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Document is what one image's SBOMs say.
type Document struct {
	// Name is the image's name prefix, e.g.
	// petrel-aws-dev-x86_64-0.1.0-abcd1234.
	Name string
	OS   OS
	// Created is SOURCE_DATE_EPOCH.
	Created   time.Time
	Packages  []Package
	Binaries  []Binary
	Artifacts []Artifact
}

// OS identifies the image.
type OS struct {
	// ID is the OS name ("petrel"), PrettyName its human name.
	ID, PrettyName, Vendor, HomeURL string
	Variant, Arch, Version, BuildID string
}

// Package is one installed RPM.
type Package struct {
	Name, Epoch, Version, Release, Arch string
	License, URL, Summary               string
	// SourceRPM is the name of the source RPM it was built from.
	SourceRPM string
	// RPMFile and RPMSHA256 are the RPM file's name and digest (hex).
	RPMFile, RPMSHA256 string
	// Sources are the external files of the package it was built from.
	Sources []Source
}

// EVR returns [epoch:]version-release.
func (p Package) EVR() string {
	v := p.Version + "-" + p.Release
	if p.Epoch != "" && p.Epoch != "0" {
		v = p.Epoch + ":" + v
	}
	return v
}

// Source is an upstream file a package repackages or builds from.
type Source struct {
	// File is its name in SOURCES.
	File string
	// URL is where it comes from, for URL sources.
	URL string
	// DebianPackage and DebianVersion name a Debian binary package.
	DebianPackage, DebianVersion string
	SHA512                       string
}

// Binary is one Go executable of the image.
type Binary struct {
	// Path is its absolute path in the image.
	Path string
	// Package is the RPM that installs it.
	Package string
	// GoVersion is the toolchain, e.g. go1.26.8; Main the main package.
	GoVersion, Main string
	// MainModule is the module of the main package; Modules its
	// dependencies (with replacements applied).
	MainModule Module
	Modules    []Module
}

// Module is a Go module.
type Module struct {
	Path, Version, Sum string
}

// Artifact is one output file of the image build.
type Artifact struct {
	Name   string
	Size   int64
	SHA256 string
}

// normalize sorts everything so that the output does not depend on the
// order the inputs were found in.
func (d *Document) normalize() {
	slices.SortFunc(d.Packages, func(a, b Package) int { return strings.Compare(a.Name, b.Name) })
	for i := range d.Packages {
		slices.SortFunc(d.Packages[i].Sources, func(a, b Source) int { return strings.Compare(a.File, b.File) })
	}
	slices.SortFunc(d.Binaries, func(a, b Binary) int { return strings.Compare(a.Path, b.Path) })
	for i := range d.Binaries {
		slices.SortFunc(d.Binaries[i].Modules, func(a, b Module) int { return strings.Compare(a.Path, b.Path) })
	}
	slices.SortFunc(d.Artifacts, func(a, b Artifact) int { return strings.Compare(a.Name, b.Name) })
}

// digest is the SHA-256 of the document's content, which names it.
func (d *Document) digest() [sha256.Size]byte {
	b, _ := json.Marshal(d) // plain structs: cannot fail
	return sha256.Sum256(b)
}

// module is a Go module with the binaries and packages it is in.
type module struct {
	Module
	binaries, packages []string
	stdlib             bool
}

// modules returns every module of the document's binaries once (the main
// modules included, the toolchains as "stdlib"), sorted by path and
// version.
func (d *Document) modules() []*module {
	byKey := map[string]*module{}
	add := func(m Module, b Binary, stdlib bool) {
		k := m.Path + "@" + m.Version
		mod := byKey[k]
		if mod == nil {
			mod = &module{Module: m, stdlib: stdlib}
			byKey[k] = mod
		}
		if !slices.Contains(mod.binaries, b.Path) {
			mod.binaries = append(mod.binaries, b.Path)
		}
		if b.Package != "" && !slices.Contains(mod.packages, b.Package) {
			mod.packages = append(mod.packages, b.Package)
		}
	}
	for _, b := range d.Binaries {
		add(Module{Path: "stdlib", Version: strings.TrimPrefix(b.GoVersion, "go")}, b, true)
		if b.MainModule.Path != "" {
			m := b.MainModule
			if m.Version == "" || m.Version == "(devel)" {
				m.Version = d.OS.Version + "-" + d.OS.BuildID
			}
			add(m, b, false)
		}
		for _, m := range b.Modules {
			add(m, b, false)
		}
	}
	out := make([]*module, 0, len(byKey))
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		m := byKey[k]
		slices.Sort(m.binaries)
		slices.Sort(m.packages)
		out = append(out, m)
	}
	return out
}

// purls of the ecosystems.
func rpmPURL(vendor string, p Package) string {
	q := "?arch=" + p.Arch
	if p.Epoch != "" && p.Epoch != "0" {
		q += "&epoch=" + p.Epoch
	}
	return fmt.Sprintf("pkg:rpm/%s/%s@%s-%s%s", purlSegment(strings.ToLower(vendor)), purlSegment(p.Name), purlSegment(p.Version), purlSegment(p.Release), q)
}

func debPURL(s Source) string {
	u := fmt.Sprintf("pkg:deb/debian/%s@%s", purlSegment(s.DebianPackage), purlSegment(s.DebianVersion))
	if a := debArch(s.File); a != "" {
		u += "?arch=" + a
	}
	return u
}

func goPURL(m *module) string {
	return fmt.Sprintf("pkg:golang/%s@%s", strings.ToLower(m.Path), purlSegment(m.Version))
}

// debArch returns the architecture of a .deb file name
// (name_version_arch.deb).
func debArch(file string) string {
	base, ok := strings.CutSuffix(file, ".deb")
	if !ok {
		return ""
	}
	if i := strings.LastIndex(base, "_"); i >= 0 {
		return base[i+1:]
	}
	return ""
}

// purlSegment percent-encodes what a purl segment may not hold.
func purlSegment(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(".-_~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// licenseExpression returns the RPM licence if it is an SPDX licence
// expression, else "".
func licenseExpression(s string) string {
	tokens := strings.Fields(strings.NewReplacer("(", " ( ", ")", " ) ").Replace(s))
	if len(tokens) == 0 {
		return ""
	}
	for _, t := range tokens {
		switch t {
		case "AND", "OR", "WITH", "(", ")":
			continue
		}
		for _, c := range t {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == ':') {
				return ""
			}
		}
	}
	return s
}
