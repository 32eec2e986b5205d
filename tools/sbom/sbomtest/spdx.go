package sbomtest

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// SPDX 2.3 facts the checks below rely on (the specification's clauses on
// document creation information, packages and relationships).
var (
	spdxID = regexp.MustCompile(`^SPDXRef-[A-Za-z0-9.-]+$`)
	// checksumLen is the hex length of each checksum algorithm SPDX 2.3
	// names (clause 7.10); MD2/4/6 and ADLER32 are left out: nothing here
	// writes them.
	checksumLen = map[string]int{
		"SHA1": 40, "SHA224": 56, "SHA256": 64, "SHA384": 96, "SHA512": 128, "MD5": 32,
		"SHA3-256": 64, "SHA3-384": 96, "SHA3-512": 128, "BLAKE2b-256": 64, "BLAKE2b-384": 96,
		"BLAKE2b-512": 128, "BLAKE3": 64,
	}
	// relationshipTypes are SPDX 2.3's relationship types (clause 11.1).
	relationshipTypes = []string{
		"DESCRIBES", "DESCRIBED_BY", "CONTAINS", "CONTAINED_BY", "DEPENDS_ON", "DEPENDENCY_OF",
		"DEPENDENCY_MANIFEST_OF", "BUILD_DEPENDENCY_OF", "DEV_DEPENDENCY_OF", "OPTIONAL_DEPENDENCY_OF",
		"PROVIDED_DEPENDENCY_OF", "TEST_DEPENDENCY_OF", "RUNTIME_DEPENDENCY_OF", "EXAMPLE_OF", "GENERATES",
		"GENERATED_FROM", "ANCESTOR_OF", "DESCENDANT_OF", "VARIANT_OF", "DISTRIBUTION_ARTIFACT",
		"PATCH_FOR", "PATCH_APPLIED", "COPY_OF", "FILE_ADDED", "FILE_DELETED", "FILE_MODIFIED",
		"EXPANDED_FROM_ARCHIVE", "DYNAMIC_LINK", "STATIC_LINK", "DATA_FILE_OF", "TEST_CASE_OF",
		"BUILD_TOOL_OF", "DEV_TOOL_OF", "TEST_OF", "TEST_TOOL_OF", "DOCUMENTATION_OF", "OPTIONAL_COMPONENT_OF",
		"METAFILE_OF", "PACKAGE_OF", "AMENDS", "PREREQUISITE_FOR", "HAS_PREREQUISITE", "REQUIREMENT_DESCRIPTION_FOR",
		"SPECIFICATION_FOR", "OTHER",
	}
)

type spdxChecksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxDoc struct {
	Version      string `json:"spdxVersion"`
	DataLicense  string `json:"dataLicense"`
	ID           string `json:"SPDXID"`
	Name         string `json:"name"`
	Namespace    string `json:"documentNamespace"`
	CreationInfo *struct {
		Created  string   `json:"created"`
		Creators []string `json:"creators"`
	} `json:"creationInfo"`
	Packages []struct {
		ID               string         `json:"SPDXID"`
		Name             string         `json:"name"`
		DownloadLocation string         `json:"downloadLocation"`
		FilesAnalyzed    *bool          `json:"filesAnalyzed"`
		Checksums        []spdxChecksum `json:"checksums"`
	} `json:"packages"`
	Files []struct {
		ID        string         `json:"SPDXID"`
		Name      string         `json:"fileName"`
		Checksums []spdxChecksum `json:"checksums"`
	} `json:"files"`
	Relationships []struct {
		Element string `json:"spdxElementId"`
		Type    string `json:"relationshipType"`
		Related string `json:"relatedSpdxElement"`
	} `json:"relationships"`
}

// checkSPDX checks what SPDX 2.3 requires of a JSON document and every
// package, file and relationship in it, naming each problem with its JSON
// path. (The SPDX 2.3 JSON schema is published only in the specification's
// own repository, which the build machines cannot reach; these checks
// cover the same mandatory fields and value sets.)
func checkSPDX(data []byte) error {
	var d spdxDoc
	if err := json.Unmarshal(data, &d); err != nil {
		return fmt.Errorf("parse document: %w", err)
	}
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if d.Version != "SPDX-2.3" {
		bad("spdxVersion", "%q, want SPDX-2.3", d.Version)
	}
	if d.DataLicense != "CC0-1.0" {
		bad("dataLicense", "%q, want CC0-1.0", d.DataLicense)
	}
	if d.ID != "SPDXRef-DOCUMENT" {
		bad("SPDXID", "%q, want SPDXRef-DOCUMENT", d.ID)
	}
	if d.Name == "" {
		bad("name", "missing")
	}
	if u, err := url.Parse(d.Namespace); err != nil || !u.IsAbs() || strings.Contains(d.Namespace, "#") {
		bad("documentNamespace", "%q is not an absolute URI without a fragment", d.Namespace)
	}
	if d.CreationInfo == nil {
		bad("creationInfo", "missing")
	} else {
		if _, err := time.Parse("2006-01-02T15:04:05Z", d.CreationInfo.Created); err != nil {
			bad("creationInfo.created", "%q is not YYYY-MM-DDThh:mm:ssZ", d.CreationInfo.Created)
		}
		if len(d.CreationInfo.Creators) == 0 {
			bad("creationInfo.creators", "empty")
		}
		for i, c := range d.CreationInfo.Creators {
			kind, name, ok := strings.Cut(c, ": ")
			if !ok || name == "" || !slices.Contains([]string{"Tool", "Organization", "Person"}, kind) {
				bad(fmt.Sprintf("creationInfo.creators[%d]", i), "%q is not Tool:, Organization: or Person: and a name", c)
			}
		}
	}
	ids := map[string]bool{d.ID: true}
	addID := func(path, id string) {
		if !spdxID.MatchString(id) {
			bad(path+".SPDXID", "%q is not SPDXRef-[A-Za-z0-9.-]+", id)
		}
		if ids[id] {
			bad(path+".SPDXID", "%q is used twice", id)
		}
		ids[id] = true
	}
	checksums := func(path string, cs []spdxChecksum) {
		for i, c := range cs {
			n, ok := checksumLen[c.Algorithm]
			_, err := hex.DecodeString(c.Value)
			switch {
			case !ok:
				bad(fmt.Sprintf("%s.checksums[%d].algorithm", path, i), "unknown algorithm %q", c.Algorithm)
			case len(c.Value) != n || err != nil || strings.ToLower(c.Value) != c.Value:
				bad(fmt.Sprintf("%s.checksums[%d].checksumValue", path, i), "%q is not %d lower-case hex digits", c.Value, n)
			}
		}
	}
	for i, p := range d.Packages {
		path := fmt.Sprintf("packages[%d]", i)
		addID(path, p.ID)
		if p.Name == "" {
			bad(path+".name", "missing")
		}
		if p.DownloadLocation == "" {
			bad(path+".downloadLocation", "missing (NONE, NOASSERTION or a location)")
		}
		checksums(path, p.Checksums)
	}
	for i, f := range d.Files {
		path := fmt.Sprintf("files[%d]", i)
		addID(path, f.ID)
		if f.Name == "" {
			bad(path+".fileName", "missing")
		}
		if !slices.ContainsFunc(f.Checksums, func(c spdxChecksum) bool { return c.Algorithm == "SHA1" }) {
			bad(path+".checksums", "no SHA1 checksum (SPDX 2.3 requires one for every file)")
		}
		checksums(path, f.Checksums)
	}
	for i, r := range d.Relationships {
		path := fmt.Sprintf("relationships[%d]", i)
		if !slices.Contains(relationshipTypes, r.Type) {
			bad(path+".relationshipType", "unknown type %q", r.Type)
		}
		for field, id := range map[string]string{"spdxElementId": r.Element, "relatedSpdxElement": r.Related} {
			if id != "NONE" && id != "NOASSERTION" && !ids[id] && !strings.HasPrefix(id, "DocumentRef-") {
				bad(path+"."+field, "%q names no element of the document", id)
			}
		}
	}
	return errors.Join(errs...)
}
