package sbom

import (
	"bytes"
	"fmt"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// CycloneDX returns the document as CycloneDX 1.5 JSON.
func CycloneDX(d Document) ([]byte, error) {
	d.normalize()
	sum := d.digest()
	// A name-based UUID (version 5 layout) from the content.
	u := sum[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	serial := fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])

	vendor := &cdx.OrganizationalEntity{Name: d.OS.Vendor}
	if d.OS.HomeURL != "" {
		vendor.URL = &[]string{d.OS.HomeURL}
	}
	osRef := "os:" + d.OS.ID + "-" + d.OS.Variant
	bom := cdx.NewBOM()
	bom.SerialNumber = serial
	bom.Metadata = &cdx.Metadata{
		Timestamp: d.Created.UTC().Format("2006-01-02T15:04:05Z"),
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: Tool, Supplier: vendor}}},
		Component: &cdx.Component{BOMRef: osRef, Type: cdx.ComponentTypeOS, Name: d.OS.ID + "-" + d.OS.Variant, Version: d.OS.Version + "-" + d.OS.BuildID,
			Supplier: vendor, Description: fmt.Sprintf("%s %s image for %s", d.OS.PrettyName, d.OS.Variant, d.OS.Arch),
			Properties: &[]cdx.Property{{Name: "petrel:image:name", Value: d.Name}, {Name: "petrel:image:arch", Value: d.OS.Arch}}},
	}
	var comps []cdx.Component
	deps := map[string][]string{}
	var rpmRefs []string
	for _, p := range d.Packages {
		c := cdx.Component{BOMRef: "rpm:" + p.Name, Type: cdx.ComponentTypeLibrary, Name: p.Name, Version: p.EVR(), Supplier: vendor,
			Description: p.Summary, PackageURL: rpmPURL(d.OS.Vendor, p)}
		if l := licenseExpression(p.License); l != "" {
			c.Licenses = &cdx.Licenses{{Expression: l}}
		} else if p.License != "" {
			c.Licenses = &cdx.Licenses{{License: &cdx.License{Name: p.License}}}
		}
		if p.RPMSHA256 != "" {
			c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: p.RPMSHA256}}
		}
		if p.URL != "" {
			c.ExternalReferences = &[]cdx.ExternalReference{{Type: cdx.ERTypeWebsite, URL: p.URL}}
		}
		props := []cdx.Property{}
		if p.RPMFile != "" {
			props = append(props, cdx.Property{Name: "petrel:rpm:file", Value: p.RPMFile})
		}
		if p.SourceRPM != "" {
			props = append(props, cdx.Property{Name: "petrel:rpm:sourcerpm", Value: p.SourceRPM})
		}
		if len(props) > 0 {
			c.Properties = &props
		}
		var ancestors []cdx.Component
		for _, s := range p.Sources {
			a := cdx.Component{Type: cdx.ComponentTypeFile, Name: s.File, Hashes: &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA512, Value: s.SHA512}}}
			if s.URL != "" {
				a.ExternalReferences = &[]cdx.ExternalReference{{Type: cdx.ERTypeDistribution, URL: s.URL}}
			}
			if s.DebianPackage != "" {
				a.Type, a.Name, a.Version, a.PackageURL = cdx.ComponentTypeLibrary, s.DebianPackage, s.DebianVersion, debPURL(s)
				a.Supplier = &cdx.OrganizationalEntity{Name: "Debian"}
				a.Properties = &[]cdx.Property{{Name: "petrel:source:file", Value: s.File}}
			}
			ancestors = append(ancestors, a)
		}
		if len(ancestors) > 0 {
			c.Pedigree = &cdx.Pedigree{Ancestors: &ancestors, Notes: "repackaged from the upstream files pinned in package.toml"}
		}
		comps = append(comps, c)
		rpmRefs = append(rpmRefs, c.BOMRef)
	}
	deps[osRef] = rpmRefs

	for _, m := range d.modules() {
		ref := "go:" + m.Path + "@" + m.Version
		c := cdx.Component{BOMRef: ref, Type: cdx.ComponentTypeLibrary, Name: m.Path, Version: m.Version, PackageURL: goPURL(m),
			Properties: &[]cdx.Property{{Name: "petrel:go:binaries", Value: strings.Join(m.binaries, ",")}}}
		if m.Sum != "" {
			*c.Properties = append(*c.Properties, cdx.Property{Name: "petrel:go:sum", Value: m.Sum})
		}
		comps = append(comps, c)
		owners := m.packages
		if len(owners) == 0 {
			owners = []string{""}
		}
		for _, o := range owners {
			from := "rpm:" + o
			if o == "" {
				from = osRef
			}
			deps[from] = append(deps[from], ref)
		}
	}

	for _, a := range d.Artifacts {
		comps = append(comps, cdx.Component{BOMRef: "artifact:" + a.Name, Type: cdx.ComponentTypeFile, Name: a.Name, Version: d.OS.Version + "-" + d.OS.BuildID,
			Hashes:     &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: a.SHA256}},
			Properties: &[]cdx.Property{{Name: "petrel:artifact:size", Value: fmt.Sprint(a.Size)}}})
	}
	bom.Components = &comps

	known := map[string]bool{osRef: true}
	for _, c := range comps {
		known[c.BOMRef] = true
	}
	var dependencies []cdx.Dependency
	for _, from := range append([]string{osRef}, rpmRefs...) {
		to := deps[from]
		if !known[from] {
			continue
		}
		dependencies = append(dependencies, cdx.Dependency{Ref: from, Dependencies: &to})
	}
	bom.Dependencies = &dependencies

	var b bytes.Buffer
	if err := cdx.NewBOMEncoder(&b, cdx.BOMFileFormatJSON).SetPretty(true).EncodeVersion(bom, cdx.SpecVersion1_5); err != nil {
		return nil, fmt.Errorf("encode CycloneDX document: %w", err)
	}
	return b.Bytes(), nil
}
