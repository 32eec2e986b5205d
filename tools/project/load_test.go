package project_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/project"
)

func TestLoadGood(t *testing.T) {
	t.Parallel()
	p, err := project.Load(context.Background(), filepath.Join("testdata", "good"))
	if err != nil {
		t.Fatalf("Load(testdata/good): %v", err)
	}
	if got, want := p.PackageNames(), []string{"glibc", "kernel", "os", "release"}; !slices.Equal(got, want) {
		t.Errorf("PackageNames() = %q, want %q", got, want)
	}
	kernel := p.Packages["kernel"]
	if kernel.Spec == nil || kernel.Spec.Name != "petrel-kernel" || kernel.Spec.Version != "6.1.112" {
		t.Errorf("kernel spec = %+v", kernel.Spec)
	}
	if got := kernel.LocalFiles; !slices.Equal(got, []string{"config-petrel"}) {
		t.Errorf("kernel LocalFiles = %q, want [config-petrel]", got)
	}
	if got := kernel.ExternalFiles[0].Path; got != "linux-6.1.112.tar.xz" {
		t.Errorf("kernel external file path = %q, want the URL's last element", got)
	}
	if got := p.Packages["os"].SourceGroups; !slices.Equal(got, []string{"api"}) {
		t.Errorf("os SourceGroups = %q", got)
	}
	if p.RPMName("os") != "petrel-os" {
		t.Errorf("RPMName(os) = %q", p.RPMName("os"))
	}
	m := p.Macros()
	if m["_cross_os"] != "petrel-" || m["_cross_arch"] != "x86_64" || m["_cross_vendor"] != "petrel" {
		t.Errorf("Macros() = %v", m)
	}
	if got := p.MacrosFor("aarch64")["_cross_go_arch"]; got != "arm64" {
		t.Errorf("MacrosFor(aarch64)[_cross_go_arch] = %q", got)
	}

	v := p.Variants["metal-dev"]
	for _, tt := range []struct {
		feature string
		want    bool
	}{
		{"in-place-updates", true}, {"host-containers", false}, {"debug-shell", true},
		{"ext4-root-partition", false}, {"selinux-permissive", false}, {"nonsense", false},
	} {
		if got := v.Feature(tt.feature); got != tt.want {
			t.Errorf("metal-dev Feature(%q) = %v, want %v", tt.feature, got, tt.want)
		}
	}
	if v.ImageFormat != "raw" || v.ImageLayout.PartitionPlan != "unified" || v.ImageLayout.OSImageSizeGiB != 4 ||
		v.ImageLayout.DataImageSizeGiB != 1 || v.ImageLayout.PublishImageSizeHintGiB != 22 {
		t.Errorf("metal-dev defaults not applied: %+v %+v", v.ImageFormat, v.ImageLayout)
	}
	if p.Kits["core-kit"].Dir != filepath.Join(p.Root, "kits", "core-kit") {
		t.Errorf("kit Dir = %q", p.Kits["core-kit"].Dir)
	}
}

const hex128 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestLoadErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		overlay map[string]string
		want    []string
	}{
		{"no Twoliter.toml", map[string]string{"Twoliter.toml": ""}, []string{"Twoliter.toml: file does not exist"}},
		{"toml syntax", map[string]string{"Twoliter.toml": "schema-version = 1\nrelease-version = \n"},
			[]string{"Twoliter.toml:2: "}},
		{"manifest fields", map[string]string{"Twoliter.toml": `schema-version = 2
release-version = "1.0"
colour = "blue"
[os]
name = "Petrel"
pretty-name = "P"
vendor = "P"
[[sdk.tool]]
package = "x"
[[sdk.tool]]
command = "y"
min-version = "v1"
[[kit]]
name = "nope-kit"
[release]
variants = ["metal-dev", "no-such", "metal-dev"]
`}, []string{
			`Twoliter.toml: colour: unknown key`,
			`Twoliter.toml: schema-version: expected 1, got 2`,
			`Twoliter.toml: release-version: expected a semantic version such as "1.2.3", got "1.0"`,
			`Twoliter.toml: os.name: expected lower-case letters, digits and '-', starting with a letter, got "Petrel"`,
			`Twoliter.toml: sdk.tool[0]: missing command (or file)`,
			`Twoliter.toml: sdk.tool[1].package: missing (the Debian package that provides y)`,
			`Twoliter.toml: sdk.tool[1].min-version: expected numbers separated by dots, got "v1"`,
			`Twoliter.toml: kit[0].name: unknown kit "nope-kit" (no kits/nope-kit/kit.toml)`,
			`Twoliter.toml: release.variants[1]: unknown variant "no-such" (known: metal-dev, vmware-dev)`,
			`Twoliter.toml: release.variants: "metal-dev" is listed twice`,
		}},
		{"makefile", map[string]string{"Makefile.toml": "[tasks.a]\ncommand = \"x\"\ndependencies = [\"b\", \"zz\"]\n[tasks.b]\ndependencies = [\"a\"]\n[tasks.c]\n"},
			[]string{
				`Makefile.toml: tasks.a.dependencies[1]: unknown task "zz"`,
				`Makefile.toml: tasks.c: needs a command or dependencies`,
				`Makefile.toml: tasks.a: dependency cycle: a -> b -> a`,
			}},
		{"package toml", map[string]string{"packages/kernel/package.toml": `source-groups = ["nope"]
go-commands = ["../x"]
extra = 1
[[external-files]]
url = "ftp://x/y"
sha512 = "abc"
[[external-files]]
debian = "libc6"
url = "https://x/y.tar"
sha512 = "` + hex128 + `"
[[external-files]]
debian = "libc6"
sha512 = "` + hex128 + `"
`}, []string{
			`packages/kernel/package.toml: extra: unknown key`,
			`packages/kernel/package.toml: source-groups[0]: sources/nope is not a directory`,
			`packages/kernel/package.toml: go-commands[0]: expected a directory under cmd/, got "../x"`,
			`packages/kernel/package.toml: external-files[0].url: expected an http or https URL, got "ftp://x/y"`,
			`packages/kernel/package.toml: external-files[0].sha512: expected 128 lower-case hex digits, got "abc"`,
			`packages/kernel/package.toml: external-files[1]: set url or debian, not both`,
			`packages/kernel/package.toml: external-files[2].debian: expected "name=version" of a Debian package, got "libc6"`,
			`packages/kernel/kernel.spec:6: Source0: missing source file "linux-6.1.112.tar.xz": not in packages/kernel/ and not an external file of package.toml`,
		}},
		{"go module without go.sum", map[string]string{"packages/os/package.toml": "go-module = true\n", "packages/os/go.mod": "module x\n"},
			[]string{`packages/os/package.toml: go-module: packages/os/go.sum is missing: a go-module package holds its own go.mod and go.sum`}},
		{"missing spec and manifest", map[string]string{"packages/extra/README": "x"}, []string{
			`packages/extra/package.toml: file does not exist`,
			`packages/extra/extra.spec: file does not exist`,
		}},
		{"spec name mismatch", map[string]string{"packages/os/os.spec": "Name: %{_cross_os}other\nVersion: 1\nRelease: 1\nLicense: MIT\n"},
			[]string{`packages/os/os.spec: Name "petrel-other" does not match the package directory: expected "%{_cross_os}os" ("petrel-os")`}},
		{"spec parse error", map[string]string{"packages/os/os.spec": "Name: %{_cross_os}os\nVersion: 1\nRelease: 1\nLicense: MIT\nRequires: (a if b)\n"},
			[]string{`packages/os/os.spec:5: Requires: rich dependencies are not supported: "(a if b)"`}},
		{"missing local source", map[string]string{"packages/kernel/config-petrel": ""},
			[]string{`packages/kernel/kernel.spec:7: Source1: missing source file "config-petrel": not in packages/kernel/ and not an external file of package.toml`}},
		{"kit", map[string]string{"kits/core-kit/kit.toml": "name = \"other\"\nversion = \"x\"\npackages = [\"os\", \"ghost\", \"os\"]\n"},
			[]string{
				`kits/core-kit/kit.toml: name: "other" does not match the directory name "core-kit"`,
				`kits/core-kit/kit.toml: version: expected a semantic version such as "1.2.3", got "x"`,
				`kits/core-kit/kit.toml: packages[1]: unknown package "ghost" (no packages/ghost/)`,
				`kits/core-kit/kit.toml: packages: "os" is listed twice`,
				`variants/metal-dev/variant.toml: included-packages[0]: package "release" is not in any kit of the variant (core-kit)`,
				`variants/vmware-dev/variant.toml: included-packages[0]: package "release" is not in any kit of the variant (core-kit)`,
				`Twoliter.toml: kit[0].version: "0.1.0" does not match kits/core-kit/kit.toml version "x"`,
			}},
		{"variant", map[string]string{"variants/metal-dev/variant.toml": `supported-arches = ["x86_64", "riscv64"]
kits = ["core-kit", "no-kit"]
included-packages = ["release", "ghost"]
image-format = "iso"
kernel-parameters = [""]
colour = 1
[image-layout]
os-image-size-gib = 3
data-image-size-gib = -1
partition-plan = "striped"
[image-features]
warp-drive = true
`}, []string{
			`variants/metal-dev/variant.toml: colour: unknown key`,
			`variants/metal-dev/variant.toml: image-format: unknown format "iso" (valid: raw, qcow2, vmdk)`,
			`variants/metal-dev/variant.toml: image-layout.partition-plan: unknown plan "striped" (valid: split, unified)`,
			`variants/metal-dev/variant.toml: image-layout.os-image-size-gib: expected 2 or 4, got 3`,
			`variants/metal-dev/variant.toml: image-layout.data-image-size-gib: expected at least 1, got -1`,
			`variants/metal-dev/variant.toml: image-features.warp-drive: unknown feature (valid: debug-api, debug-shell, ext4-root-partition, grub-set-private-var, host-containers, in-place-updates, selinux-permissive)`,
			`variants/metal-dev/variant.toml: supported-arches[1]: unknown architecture "riscv64" (valid: x86_64, aarch64)`,
			`variants/metal-dev/variant.toml: kernel-parameters[0]: expected a non-empty parameter on one line, got ""`,
			`variants/metal-dev/variant.toml: kits[1]: unknown kit "no-kit" (no kits/no-kit/kit.toml)`,
			`variants/metal-dev/variant.toml: included-packages[1]: package "ghost" is not in any kit of the variant (core-kit, no-kit)`,
		}},
		{"feature package not in a kit", map[string]string{"variants/metal-dev/variant.toml": "supported-arches = [\"x86_64\"]\nkits = [\"core-kit\"]\n[image-features]\ndebug-api = true\n"},
			[]string{`variants/metal-dev/variant.toml: image-features.debug-api: needs package "api-bridge", which is not in any kit of the variant (core-kit)`}},
		{"feature package without its feature", map[string]string{"variants/metal-dev/variant.toml": "supported-arches = [\"x86_64\"]\nkits = [\"core-kit\"]\nincluded-packages = [\"release\", \"api-bridge\"]\n"},
			[]string{
				`variants/metal-dev/variant.toml: included-packages[1]: package "api-bridge" is not in any kit of the variant (core-kit)`,
				`variants/metal-dev/variant.toml: included-packages[1]: package "api-bridge" comes only with image feature debug-api (set image-features.debug-api = true instead)`,
			}},
		{"vmdk without template", map[string]string{"variants/vmware-dev/template.ovf": ""},
			[]string{`variants/vmware-dev/variant.toml: ovf-template: file "template.ovf" does not exist`}},
		{"vmdk template unset", map[string]string{"variants/vmware-dev/variant.toml": "supported-arches = [\"x86_64\"]\nkits = [\"core-kit\"]\nimage-format = \"vmdk\"\n"},
			[]string{`variants/vmware-dev/variant.toml: ovf-template: required when image-format is "vmdk"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := testkit.Copy(t, filepath.Join("testdata", "good"), tt.overlay)
			p, err := project.Load(context.Background(), root)
			if err == nil {
				t.Fatalf("Load = %v, nil error; want %q", p, tt.want)
			}
			wantProblems(t, err, tt.want)
		})
	}
}
