package buildctl_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/buildctl"
)

// fixtureRoot is the fixture project shared with tools/project's tests.
var fixtureRoot = filepath.Join("..", "project", "testdata", "good")

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = buildctl.Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestFoundationCommands(t *testing.T) {
	t.Parallel()
	broken := testkit.Copy(t, fixtureRoot, map[string]string{"packages/os/os.spec": "Name: %{_cross_os}os\nVersion: 1\nRelease: 1\nLicense: MIT\nRequires: %{_cross_os}ghost\n"})
	cycle := testkit.Copy(t, fixtureRoot, map[string]string{"packages/glibc/glibc.spec": "Name: %{_cross_os}glibc\nVersion: 1\nRelease: 1\nLicense: MIT\nSource0: libc6_2.36-9+deb12u9_amd64.deb\nBuildRequires: %{_cross_os}os\n%package devel\n"})
	missingTool := testkit.Copy(t, fixtureRoot, map[string]string{"Twoliter.toml": `schema-version = 1
release-version = "0.1.0"
[os]
name = "petrel"
pretty-name = "Petrel OS"
vendor = "Petrel"
[[sdk.tool]]
command = "sh"
package = "dash"
[[sdk.tool]]
command = "petrel-no-such-tool"
package = "petrel-tool-pkg"
[[sdk.tool]]
file = "/nonexistent/OVMF_CODE.fd"
package = "ovmf"
[[kit]]
name = "core-kit"
`})
	badTwoliter := testkit.Copy(t, fixtureRoot, map[string]string{"Twoliter.toml": "schema-version = 7\n"})
	C := fixtureRoot
	for _, tt := range []struct {
		name       string
		args       []string
		wantCode   int
		wantOut    string // exact stdout when set
		wantErr    string // substring of stderr when set
		outContain string
	}{
		{name: "list packages", args: []string{"-C", C, "list", "packages"}, wantOut: "glibc\nkernel\nos\nrelease\n"},
		{name: "list kits", args: []string{"-C", C, "list", "kits"}, wantOut: "core-kit\n"},
		{name: "list variants", args: []string{"-C", C, "list", "variants"}, wantOut: "metal-dev\nvmware-dev\n"},
		{name: "list packages long", args: []string{"-C", C, "list", "--long", "packages"},
			wantOut: "NAME     VERSION    RPM             SUBPACKAGES\n" +
				"glibc    2.36-1     petrel-glibc    petrel-glibc-devel\n" +
				"kernel   6.1.112-1  petrel-kernel   -\n" +
				"os       0.1.0-1    petrel-os       -\n" +
				"release  0.1.0-1    petrel-release  -\n"},
		{name: "list variants long", args: []string{"-C", C, "list", "-l", "variants"},
			outContain: "metal-dev   raw     unified  x86_64  core-kit\n"},
		{name: "list unknown kind", args: []string{"-C", C, "list", "widgets"}, wantCode: 2, wantErr: `invalid argument "widgets"`},
		{name: "list no kind", args: []string{"-C", C, "list"}, wantCode: 2, wantErr: "accepts 1 arg(s), received 0"},
		{name: "list broken project", args: []string{"-C", broken, "list", "packages"}, wantCode: 0, wantOut: "glibc\nkernel\nos\nrelease\n"},
		{name: "bad Twoliter.toml", args: []string{"-C", badTwoliter, "list", "packages"}, wantCode: 2,
			wantErr: "Twoliter.toml: schema-version: expected 1, got 7"},
		{name: "no project", args: []string{"-C", t.TempDir(), "list", "kits"}, wantCode: 2, wantErr: "Twoliter.toml: file does not exist"},
		{name: "graph all", args: []string{"-C", C, "graph"},
			wantOut: "glibc\nkernel: glibc\nos: glibc\nrelease: kernel, os\n"},
		{name: "graph package", args: []string{"-C", C, "graph", "os"}, wantOut: "glibc\nos: glibc\n"},
		{name: "graph kit dot", args: []string{"-C", C, "graph", "--kit", "core-kit", "--format", "dot"},
			outContain: "\t\"release\" -> \"kernel\";\n"},
		{name: "graph unknown package", args: []string{"-C", C, "graph", "ghost"}, wantCode: 2,
			wantErr: `unknown package "ghost" (known: glibc, kernel, os, release)`},
		{name: "graph unknown kit", args: []string{"-C", C, "graph", "--kit", "nokit"}, wantCode: 2, wantErr: `unknown kit "nokit"`},
		{name: "graph bad format", args: []string{"-C", C, "graph", "--format", "svg"}, wantCode: 2, wantErr: `--format: unknown format "svg" (valid: text, dot)`},
		{name: "graph unknown dependency", args: []string{"-C", broken, "graph"}, wantCode: 2,
			wantErr: `packages/os/os.spec:5: unknown dependency "petrel-ghost" of package os`},
		{name: "graph cycle", args: []string{"-C", cycle, "graph"}, wantCode: 2, wantErr: "dependency cycle: glibc -> os -> glibc"},
		{name: "setup check ok", args: []string{"-C", C, "setup", "--check"}, wantOut: "all 2 host tools are installed\n"},
		{name: "setup nothing to install", args: []string{"-C", C, "setup"}, wantOut: "all 2 host tools are installed\n"},
		{name: "setup check missing", args: []string{"-C", missingTool, "setup", "--check"}, wantCode: 2,
			wantErr: "petrel-no-such-tool (Debian package petrel-tool-pkg): not found in PATH\n" +
				"  /nonexistent/OVMF_CODE.fd (Debian package ovmf): file does not exist\n" +
				"install them with: apt-get install --no-install-recommends petrel-tool-pkg ovmf\nor run: buildctl setup\n"},
		{name: "task with dependency", args: []string{"-C", C, "task", "hello"}, wantOut: "first\nhello metal-dev x86_64\n"},
		{name: "task flags reach env", args: []string{"-C", C, "--variant", "vmware-dev", "--arch", "aarch64", "task", "hello"},
			wantOut: "first\nhello vmware-dev aarch64\n"},
		{name: "task fails", args: []string{"-C", C, "task", "fail"}, wantCode: 1, wantErr: "run task fail (false ): exit status 1"},
		{name: "task unknown", args: []string{"-C", C, "task", "nope"}, wantCode: 2, wantErr: `unknown task "nope" (known: fail, first, hello)`},
		{name: "bad jobs flag", args: []string{"-C", C, "-j", "-3", "list", "kits"}, wantCode: 2, wantErr: "flag --jobs: expected a positive number, got -3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errb := run(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("buildctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(tt.args, " "), code, tt.wantCode, out, errb)
			}
			if tt.wantOut != "" && out != tt.wantOut {
				t.Errorf("buildctl %s: stdout =\n%q\nwant\n%q", strings.Join(tt.args, " "), out, tt.wantOut)
			}
			if tt.outContain != "" && !strings.Contains(out, tt.outContain) {
				t.Errorf("buildctl %s: stdout =\n%s\nwant it to contain %q", strings.Join(tt.args, " "), out, tt.outContain)
			}
			if tt.wantErr != "" && !strings.Contains(errb, tt.wantErr) {
				t.Errorf("buildctl %s: stderr =\n%s\nwant it to contain %q", strings.Join(tt.args, " "), errb, tt.wantErr)
			}
		})
	}
}
