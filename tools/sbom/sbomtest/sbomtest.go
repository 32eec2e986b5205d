// Package sbomtest validates SBOMs in tests: SPDX 2.3 JSON by checking
// what the specification requires of a document, its packages, files and
// relationships (spdx.go), and by a round trip through spdx/tools-golang's
// reader; CycloneDX 1.5 JSON against the 1.5
// schema that the cyclonedx-go module ships (found in the module cache
// with `go list -m`) and by decoding it with cyclonedx-go. The schema is
// draft-07 and checked with santhosh-tekuri/jsonschema, a maintained
// validator of every draft. Only tests import this package.
package sbomtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/santhosh-tekuri/jsonschema/v6"
	spdxjson "github.com/spdx/tools-golang/json"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// SPDX validates an SPDX 2.3 JSON document and returns it as read by
// tools-golang.
func SPDX(data []byte) (*spdx.Document, error) {
	if err := checkSPDX(data); err != nil {
		return nil, fmt.Errorf("SPDX 2.3: %w", err)
	}
	d, err := spdxjson.Read(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("read with tools-golang: %w", err)
	}
	return d, nil
}

// CycloneDX validates a CycloneDX 1.5 JSON document and returns it as
// decoded by cyclonedx-go.
func CycloneDX(data []byte) (*cdx.BOM, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
	if err != nil {
		return nil, fmt.Errorf("find the cyclonedx-go module: %w", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
	c := jsonschema.NewCompiler()
	for file, url := range map[string]string{
		"bom-1.5.schema.json":   "http://cyclonedx.org/schema/bom-1.5.schema.json",
		"spdx.schema.json":      "http://cyclonedx.org/schema/spdx.schema.json",
		"jsf-0.82.schemax.json": "http://cyclonedx.org/schema/jsf-0.82.schema.json",
	} {
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			return nil, fmt.Errorf("read the CycloneDX schema: %w", err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		if err := c.AddResource(url, doc); err != nil {
			return nil, err
		}
	}
	if err := validate(c, "http://cyclonedx.org/schema/bom-1.5.schema.json", data); err != nil {
		return nil, fmt.Errorf("CycloneDX 1.5 schema: %w", err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		return nil, fmt.Errorf("decode with cyclonedx-go: %w", err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_5 {
		return nil, fmt.Errorf("specVersion %s, want 1.5", bom.SpecVersion)
	}
	return &bom, nil
}

func validate(c *jsonschema.Compiler, url string, data []byte) error {
	c.AssertFormat()
	sch, err := c.Compile(url)
	if err != nil {
		return fmt.Errorf("compile %s: %w", url, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("parse document: %w", err)
	}
	return sch.Validate(inst)
}
