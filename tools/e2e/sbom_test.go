package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/image"
	"github.com/petrel-os/petrel/tools/project"
	"github.com/petrel-os/petrel/tools/sbom/sbomtest"
)

// TestImageSBOM checks the SBOMs beside the default variant's image: both
// validate against their schemas, and they list every installed RPM (the
// application inventory, which rpm writes independently), the Debian
// packages of package.toml with their SHA-512, every module `go list`
// says the agents are built from, and every output file with the SHA-256
// sha256sum computes.
func TestImageSBOM(t *testing.T) {
	img, _ := builtImage(t)
	dir := filepath.Dir(img)
	prefix := strings.TrimSuffix(filepath.Base(img), ".img")
	read := func(suffix string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, prefix+suffix))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	spdxDoc, err := sbomtest.SPDX(read(image.SuffixSPDX))
	if err != nil {
		t.Fatal(err)
	}
	bom, err := sbomtest.CycloneDX(read(image.SuffixCycloneDX))
	if err != nil {
		t.Fatal(err)
	}
	spdxPkgs := map[string]string{} // name@version -> checksum
	for _, p := range spdxDoc.Packages {
		sum := ""
		if len(p.PackageChecksums) > 0 {
			sum = p.PackageChecksums[0].Value
		}
		spdxPkgs[p.PackageName+"@"+p.PackageVersion] = sum
	}
	cdxComps := map[string]string{}
	for _, c := range *bom.Components {
		sum := ""
		if c.Hashes != nil {
			sum = (*c.Hashes)[0].Value
		}
		cdxComps[c.Name+"@"+c.Version] = sum
		if c.Pedigree != nil && c.Pedigree.Ancestors != nil {
			for _, a := range *c.Pedigree.Ancestors {
				cdxComps[a.Name+"@"+a.Version] = (*a.Hashes)[0].Value
			}
		}
	}
	has := func(what, key, sum string) {
		t.Helper()
		for name, m := range map[string]map[string]string{"SPDX": spdxPkgs, "CycloneDX": cdxComps} {
			got, ok := m[key]
			if !ok {
				t.Errorf("%s SBOM lacks %s %s", name, what, key)
			} else if sum != "" && got != sum {
				t.Errorf("%s SBOM: %s %s has digest %s, want %s", name, what, key, got, sum)
			}
		}
	}

	// Every installed RPM, from the inventory.
	var inv image.Inventory
	invData, err := os.ReadFile(filepath.Join(dir, "application-inventory.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(invData, &inv); err != nil {
		t.Fatal(err)
	}
	if len(inv.Content) < 10 {
		t.Fatalf("the inventory lists %d packages", len(inv.Content))
	}
	for _, e := range inv.Content {
		has("RPM", "petrel-"+e.Name+"@"+e.Version+"-"+e.Release, "")
	}

	// The Debian packages the RPMs repackage, with package.toml's SHA-512.
	p, err := project.Load(t.Context(), projectRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"containerd", "kernel", "systemd", "glibc"} {
		pkg, err := p.Package(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range pkg.ExternalFiles {
			deb, ver, _ := strings.Cut(e.Debian, "=")
			has("Debian package of "+name, deb+"@"+ver, e.SHA512)
		}
	}

	// Every Go module of the agents.
	cmd := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{.Path}}@{{.Version}}{{end}}{{end}}",
		"./cmd/petrel", "./cmd/petrel-init", "./cmd/api-bridge")
	cmd.Dir = projectRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	mods := strings.Fields(string(out))
	if len(mods) < 3 {
		t.Fatalf("go list found %d modules", len(mods))
	}
	for _, m := range mods {
		has("Go module", m, "")
	}
	has("Go toolchain", "stdlib@"+strings.TrimPrefix(runtimeGoVersion(t), "go"), "")

	// Every output file with its SHA-256.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	version := filepath.Base(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), image.SuffixSPDX) || strings.HasSuffix(e.Name(), image.SuffixCycloneDX) || strings.HasSuffix(e.Name(), ".ova") {
			continue
		}
		has("artifact", e.Name()+"@"+version, testkit.FileSHA256(t, filepath.Join(dir, e.Name())))
	}
}

// runtimeGoVersion is the toolchain that builds the agents.
func runtimeGoVersion(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
