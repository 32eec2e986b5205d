package sbom_test

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/sbom"
	"github.com/petrel-os/petrel/tools/sbom/sbomtest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func fixture() sbom.Document {
	return sbom.Document{
		Name:    "petrel-aws-dev-x86_64-0.1.0-abcd1234",
		Created: time.Unix(1700000000, 0),
		OS: sbom.OS{ID: "petrel", PrettyName: "Petrel OS", Vendor: "Petrel", HomeURL: "https://github.com/petrel-os/petrel",
			Variant: "aws-dev", Arch: "x86_64", Version: "0.1.0", BuildID: "abcd1234"},
		Packages: []sbom.Package{
			{Name: "petrel-os", Version: "0.1.0", Release: "1", Epoch: "0", Arch: "x86_64", License: "Apache-2.0 OR MIT",
				SourceRPM: "petrel-os-0.1.0-1.src.rpm", RPMFile: "petrel-os-0.1.0-1.x86_64.rpm", RPMSHA256: strings.Repeat("ab", 32)},
			{Name: "petrel-containerd", Version: "1.6.20", Release: "1", Epoch: "2", Arch: "x86_64", License: "Apache-2.0", URL: "https://www.debian.org/",
				Summary: "containerd and runc", SourceRPM: "petrel-containerd-1.6.20-1.src.rpm",
				Sources: []sbom.Source{
					{File: "runc_1.1.5+ds1-1+deb12u1_amd64.deb", DebianPackage: "runc", DebianVersion: "1.1.5+ds1-1+deb12u1", SHA512: strings.Repeat("1", 128)},
					{File: "containerd_1.6.20~ds1-1+deb12u3_amd64.deb", DebianPackage: "containerd", DebianVersion: "1.6.20~ds1-1+deb12u3", SHA512: strings.Repeat("2", 128)},
				}},
			{Name: "petrel-kernel", Version: "6.1.112", Release: "1", Arch: "x86_64", License: "GPL-2.0-only WITH Linux-syscall-note",
				Sources: []sbom.Source{{File: "linux-6.1.112.tar.xz", URL: "https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.1.112.tar.xz", SHA512: strings.Repeat("3", 128)}}},
			{Name: "petrel-odd", Version: "1", Release: "1", Arch: "noarch", License: "Public Domain, see COPYING"},
		},
		Binaries: []sbom.Binary{
			{Path: "/usr/bin/petrel", Package: "petrel-os", GoVersion: "go1.26.8", Main: "github.com/petrel-os/petrel/cmd/petrel",
				MainModule: sbom.Module{Path: "github.com/petrel-os/petrel", Version: "(devel)"},
				Modules: []sbom.Module{{Path: "github.com/spf13/cobra", Version: "v1.10.2", Sum: "h1:DMTTonx5m65Ic0GOoRY2c16WCbHxOOw6xxezuLaBpcU="},
					{Path: "github.com/BurntSushi/toml", Version: "v1.6.0", Sum: "h1:dRaEfpa2VI55EwlIW72hMRHdWouJeRF7TPYhI+AUQjk="}}},
			{Path: "/usr/bin/containerd", Package: "petrel-containerd", GoVersion: "go1.19.8", Main: "github.com/containerd/containerd/cmd/containerd"},
		},
		Artifacts: []sbom.Artifact{{Name: "petrel-aws-dev-x86_64-0.1.0-abcd1234.img", Size: 2 << 30, SHA256: strings.Repeat("cd", 32)},
			{Name: "application-inventory.json", Size: 4478, SHA256: strings.Repeat("ef", 32)}},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test -update and review the diff)", name)
	}
}

func TestSPDX(t *testing.T) {
	data, err := sbom.SPDX(fixture())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "fixture.spdx.json", data)
	doc, err := sbomtest.SPDX(data)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range doc.Packages {
		names = append(names, p.PackageName+"@"+p.PackageVersion)
	}
	for _, want := range []string{"petrel-aws-dev@0.1.0-abcd1234", "petrel-os@0.1.0-1", "petrel-containerd@2:1.6.20-1", "runc@1.1.5+ds1-1+deb12u1",
		"containerd@1.6.20~ds1-1+deb12u3", "linux-6.1.112.tar.xz@", "github.com/spf13/cobra@v1.10.2", "github.com/petrel-os/petrel@0.1.0-abcd1234",
		"stdlib@1.26.8", "stdlib@1.19.8", "petrel-aws-dev-x86_64-0.1.0-abcd1234.img@0.1.0-abcd1234"} {
		if !slices.Contains(names, want) {
			t.Errorf("SPDX packages lack %s: %v", want, names)
		}
	}
	for _, p := range doc.Packages {
		switch p.PackageName {
		case "petrel-odd":
			if p.PackageLicenseDeclared != "NOASSERTION" || !strings.Contains(p.PackageLicenseComments, "Public Domain, see COPYING") {
				t.Errorf("a licence that is no SPDX expression: declared %q, comment %q", p.PackageLicenseDeclared, p.PackageLicenseComments)
			}
		case "containerd":
			if p.PackageChecksums[0].Algorithm != "SHA512" || p.PackageExternalReferences[0].Locator != "pkg:deb/debian/containerd@1.6.20~ds1-1%2Bdeb12u3?arch=amd64" {
				t.Errorf("Debian source: %+v %+v", p.PackageChecksums, p.PackageExternalReferences[0])
			}
		}
	}
	// Written again by tools-golang, the document reads back the same.
	again, err := sbomtest.SPDX(data)
	if err != nil || len(again.Packages) != len(doc.Packages) || len(again.Relationships) != len(doc.Relationships) {
		t.Errorf("second read: %v", err)
	}
}

func TestCycloneDX(t *testing.T) {
	data, err := sbom.CycloneDX(fixture())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "fixture.cdx.json", data)
	bom, err := sbomtest.CycloneDX(data)
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]bool{}
	for _, c := range *bom.Components {
		refs[c.BOMRef] = true
		if c.Name == "petrel-containerd" && (c.Pedigree == nil || len(*c.Pedigree.Ancestors) != 2 || (*c.Pedigree.Ancestors)[0].Name != "containerd") {
			t.Errorf("petrel-containerd's pedigree: %+v", c.Pedigree)
		}
	}
	for _, want := range []string{"rpm:petrel-os", "go:github.com/spf13/cobra@v1.10.2", "go:stdlib@1.19.8", "artifact:application-inventory.json"} {
		if !refs[want] {
			t.Errorf("components lack %s", want)
		}
	}
	if !strings.HasPrefix(bom.SerialNumber, "urn:uuid:") || bom.Metadata.Timestamp != "2023-11-14T22:13:20Z" {
		t.Errorf("serial %s, timestamp %s", bom.SerialNumber, bom.Metadata.Timestamp)
	}
}

// TestReproducible: the same content in another order gives the same
// bytes; other content another namespace and serial number.
func TestReproducible(t *testing.T) {
	a, b := fixture(), fixture()
	slices.Reverse(b.Packages)
	slices.Reverse(b.Binaries)
	slices.Reverse(b.Artifacts)
	slices.Reverse(b.Packages[2].Sources)
	for name, enc := range map[string]func(sbom.Document) ([]byte, error){"SPDX": sbom.SPDX, "CycloneDX": sbom.CycloneDX} {
		x, err1 := enc(a)
		y, err2 := enc(b)
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
			t.Errorf("%s: the same content in another order gives other bytes (%v, %v)", name, err1, err2)
		}
		c := fixture()
		c.Artifacts[0].SHA256 = strings.Repeat("00", 32)
		z, _ := enc(c)
		if bytes.Equal(x, z) {
			t.Errorf("%s: other content, same bytes", name)
		}
	}
}

// TestValidatorsRefuse checks that the validators can fail.
func TestValidatorsRefuse(t *testing.T) {
	s, _ := sbom.SPDX(fixture())
	for _, tt := range []struct{ old, new, want string }{
		{`"relationshipType": "CONTAINS"`, `"relationshipType": "LIVES_IN"`, `relationshipType: unknown type "LIVES_IN"`},
		{`"spdxVersion": "SPDX-2.3"`, `"spdxVersion": "SPDX-2.2"`, `spdxVersion: "SPDX-2.2", want SPDX-2.3`},
		{`"dataLicense": "CC0-1.0"`, `"dataLicense": "MIT"`, `dataLicense: "MIT", want CC0-1.0`},
		{`"documentNamespace": "`, `"documentNamespace": "#`, `documentNamespace: "#`},
		{`"relatedSpdxElement": "SPDXRef-`, `"relatedSpdxElement": "SPDXRef-Missing-`, `names no element of the document`},
		{`"algorithm": "SHA256",
          "checksumValue": "`, `"algorithm": "SHA256",
          "checksumValue": "0`, `is not 64 lower-case hex digits`},
	} {
		bad := bytes.Replace(s, []byte(tt.old), []byte(tt.new), 1)
		if bytes.Equal(bad, s) {
			t.Fatalf("the fixture's SPDX document has no %q", tt.old)
		}
		if _, err := sbomtest.SPDX(bad); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("SPDX with %q: %v, want an error with %q", tt.new, err, tt.want)
		}
	}
	c, _ := sbom.CycloneDX(fixture())
	bad := bytes.Replace(c, []byte(`"alg": "SHA-256"`), []byte(`"alg": "SHA-257"`), 1)
	if _, err := sbomtest.CycloneDX(bad); err == nil || !strings.Contains(err.Error(), "alg") {
		t.Errorf("CycloneDX with an unknown hash algorithm: %v", err)
	}
}

// TestBinaries finds the real petrel-init in a fake root, and no other
// file, and lists the modules `go list` says it is built from.
func TestBinaries(t *testing.T) {
	root := testkit.Tree(t, map[string]string{"usr/bin/script": "#!/bin/sh\n", "etc/data": "\x7fELF not really"})
	os.Chmod(filepath.Join(root, "usr/bin/script"), 0o755)
	testkit.GoBuild(t, "../../cmd/petrel-init", filepath.Join(root, "usr/libexec/petrel/petrel-init"))
	elf, err := os.ReadFile("/bin/true") // an ELF executable Go did not build
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/bin/true"), elf, 0o755); err != nil {
		t.Fatal(err)
	}
	bins, err := sbom.Binaries(t.Context(), root, "/var/lib/rpm")
	if err != nil {
		t.Fatal(err)
	}
	if len(bins) != 1 || bins[0].Path != "/usr/libexec/petrel/petrel-init" || bins[0].Main != "github.com/petrel-os/petrel/cmd/petrel-init" ||
		bins[0].MainModule.Path != "github.com/petrel-os/petrel" {
		t.Fatalf("binaries %+v", bins)
	}
	cmd := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}}{{end}}{{end}}", "../../cmd/petrel-init")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !slices.Contains(want, l) {
			want = append(want, l)
		}
	}
	for _, m := range bins[0].Modules {
		got = append(got, m.Path+" "+m.Version)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("modules of petrel-init %v, go list says %v", got, want)
	}
}

func TestParsePackages(t *testing.T) {
	pkgs, err := sbom.ParsePackages([]byte("petrel-os\t0\t0.1.0\t1\tx86_64\tMIT\t(none)\tpetrel-os-0.1.0-1.src.rpm\tThe OS\n"))
	if err != nil || len(pkgs) != 1 || pkgs[0].URL != "" || pkgs[0].SourceRPM != "petrel-os-0.1.0-1.src.rpm" {
		t.Errorf("ParsePackages = %+v, %v", pkgs, err)
	}
	if _, err := sbom.ParsePackages([]byte("a\tb\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("ParsePackages of a short line = %v", err)
	}
	for srpm, want := range map[string]string{"petrel-kernel-6.1.192-2.src.rpm": "petrel-kernel", "petrel-util-linux-2.38.1-1.src.rpm": "petrel-util-linux",
		"x.rpm": "", "a-1.src.rpm": "", "": ""} {
		if got := sbom.SourceName(srpm); got != want {
			t.Errorf("SourceName(%q) = %q, want %q", srpm, got, want)
		}
	}
}

func FuzzParsePackages(f *testing.F) {
	f.Add([]byte("petrel-os\t0\t0.1.0\t1\tx86_64\tMIT\t(none)\tpetrel-os-0.1.0-1.src.rpm\tThe OS\n"))
	f.Add([]byte("\t\t\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := sbom.ParsePackages(data)
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Name == "" || p.Version == "" {
				t.Fatalf("parsed a package without name or version: %+v", p)
			}
			sbom.SourceName(p.SourceRPM)
		}
		d := fixture()
		d.Packages = pkgs
		if _, err := sbom.SPDX(d); err != nil {
			t.Fatal(err)
		}
		if _, err := sbom.CycloneDX(d); err != nil {
			t.Fatal(err)
		}
	})
}
