package sbom

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// Tool names buildctl as the creator of the documents.
const Tool = "petrel-buildctl"

// noAssertion is SPDX's "not stated".
const noAssertion = "NOASSERTION"

var idUnsafe = regexp.MustCompile(`[^a-zA-Z0-9.-]+`)

// ids hands out unique SPDX element IDs.
type ids map[string]bool

func (u ids) id(kind, name string) common.ElementID {
	base := kind + "-" + strings.Trim(idUnsafe.ReplaceAllString(name, "-"), "-")
	id := base
	for i := 2; u[id]; i++ {
		id = fmt.Sprintf("%s-%d", base, i)
	}
	u[id] = true
	return common.ElementID(id)
}

func ref(id common.ElementID) common.DocElementID { return common.MakeDocElementID("", string(id)) }

// SPDX returns the document as SPDX 2.3 JSON.
func SPDX(d Document) ([]byte, error) {
	d.normalize()
	sum := d.digest()
	ns := "https://spdx.org/spdxdocs/"
	if d.OS.HomeURL != "" {
		ns = strings.TrimSuffix(d.OS.HomeURL, "/") + "/spdx/"
	}
	supplier := &common.Supplier{Supplier: d.OS.Vendor, SupplierType: "Organization"}
	doc := &spdx.Document{
		SPDXVersion: spdx.Version, DataLicense: spdx.DataLicense, SPDXIdentifier: "DOCUMENT", DocumentName: d.Name,
		DocumentNamespace: ns + d.Name + "-" + hex.EncodeToString(sum[:8]),
		CreationInfo: &spdx.CreationInfo{Created: d.Created.UTC().Format("2006-01-02T15:04:05Z"),
			Creators: []common.Creator{{CreatorType: "Organization", Creator: d.OS.Vendor}, {CreatorType: "Tool", Creator: Tool}}},
	}
	u := ids{}
	rel := func(a common.ElementID, typ string, b common.ElementID) {
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{RefA: ref(a), RefB: ref(b), Relationship: typ})
	}
	add := func(p *spdx.Package) {
		p.PackageCopyrightText = noAssertion
		if p.PackageLicenseConcluded == "" {
			p.PackageLicenseConcluded = noAssertion
		}
		if p.PackageLicenseDeclared == "" {
			p.PackageLicenseDeclared = noAssertion
		}
		if p.PackageDownloadLocation == "" {
			p.PackageDownloadLocation = noAssertion
		}
		doc.Packages = append(doc.Packages, p)
	}

	osID := u.id("OperatingSystem", d.OS.ID+"-"+d.OS.Variant)
	add(&spdx.Package{PackageName: d.OS.ID + "-" + d.OS.Variant, PackageSPDXIdentifier: osID, PackageVersion: d.OS.Version + "-" + d.OS.BuildID,
		PackageSupplier: supplier, PackageHomePage: d.OS.HomeURL, PrimaryPackagePurpose: "OPERATING_SYSTEM",
		PackageSummary: fmt.Sprintf("%s %s image for %s", d.OS.PrettyName, d.OS.Variant, d.OS.Arch)})
	rel("DOCUMENT", "DESCRIBES", osID)

	rpmIDs := map[string]common.ElementID{}
	for _, p := range d.Packages {
		id := u.id("RPM", p.Name)
		rpmIDs[p.Name] = id
		sp := &spdx.Package{PackageName: p.Name, PackageSPDXIdentifier: id, PackageVersion: p.EVR(), PackageFileName: p.RPMFile,
			PackageSupplier: supplier, PackageHomePage: p.URL, PackageSummary: p.Summary, PackageLicenseDeclared: licenseExpression(p.License),
			PrimaryPackagePurpose:     "INSTALL",
			PackageExternalReferences: []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: rpmPURL(d.OS.Vendor, p)}}}
		if sp.PackageLicenseDeclared == "" && p.License != "" {
			sp.PackageLicenseComments = "RPM License tag: " + p.License
		}
		if p.RPMSHA256 != "" {
			sp.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: p.RPMSHA256}}
		}
		if p.SourceRPM != "" {
			sp.PackageSourceInfo = "built from source RPM " + p.SourceRPM
		}
		add(sp)
		rel(osID, "CONTAINS", id)
		for _, s := range p.Sources {
			sid := u.id("Source", p.Name+"-"+s.File)
			ss := &spdx.Package{PackageName: s.File, PackageSPDXIdentifier: sid, PackageFileName: s.File, PackageDownloadLocation: s.URL,
				PackageChecksums: []common.Checksum{{Algorithm: common.SHA512, Value: s.SHA512}}, PrimaryPackagePurpose: "SOURCE"}
			if s.DebianPackage != "" {
				ss.PackageName, ss.PackageVersion, ss.PrimaryPackagePurpose = s.DebianPackage, s.DebianVersion, "ARCHIVE"
				ss.PackageSupplier = &common.Supplier{Supplier: "Debian", SupplierType: "Organization"}
				ss.PackageExternalReferences = []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: debPURL(s)}}
			}
			add(ss)
			rel(id, "GENERATED_FROM", sid)
		}
	}

	for _, m := range d.modules() {
		id := u.id("Go", m.Path+"-"+m.Version)
		gp := &spdx.Package{PackageName: m.Path, PackageSPDXIdentifier: id, PackageVersion: m.Version, PrimaryPackagePurpose: "LIBRARY",
			PackageComment:            "compiled into " + strings.Join(m.binaries, ", "),
			PackageExternalReferences: []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: goPURL(m)}}}
		if m.Sum != "" {
			gp.PackageComment += "; go.sum " + m.Sum
		}
		if !m.stdlib && !strings.HasPrefix(m.Version, "(") {
			gp.PackageDownloadLocation = "https://proxy.golang.org/" + strings.ToLower(m.Path) + "/@v/" + m.Version + ".zip"
		}
		add(gp)
		owners := m.packages
		if len(owners) == 0 {
			rel(osID, "CONTAINS", id)
		}
		for _, o := range owners {
			if rid, ok := rpmIDs[o]; ok {
				rel(rid, "CONTAINS", id)
			} else {
				rel(osID, "CONTAINS", id)
			}
		}
	}

	for _, a := range d.Artifacts {
		id := u.id("Artifact", a.Name)
		add(&spdx.Package{PackageName: a.Name, PackageSPDXIdentifier: id, PackageFileName: a.Name, PackageVersion: d.OS.Version + "-" + d.OS.BuildID,
			PackageSupplier: supplier, PrimaryPackagePurpose: "FILE", PackageComment: fmt.Sprintf("%d bytes", a.Size),
			PackageChecksums: []common.Checksum{{Algorithm: common.SHA256, Value: a.SHA256}}})
		rel(id, "PACKAGE_OF", osID)
	}
	for _, p := range doc.Packages {
		p.FilesAnalyzed, p.IsFilesAnalyzedTagPresent = false, true
	}

	var b bytes.Buffer
	if err := spdxjson.Write(doc, &b, spdxjson.Indent("  ")); err != nil {
		return nil, fmt.Errorf("encode SPDX document: %w", err)
	}
	return b.Bytes(), nil
}
