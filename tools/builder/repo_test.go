package builder

import (
	"context"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/tools/project"
)

// TestRepoSourceGroups checks that every package of this repository that
// builds Go commands lists, as source groups, every directory under
// sources/ those commands import. The build copies only the listed groups,
// so a missing one would otherwise surface only as a failed rpmbuild.
func TestRepoSourceGroups(t *testing.T) {
	t.Parallel()
	p, err := project.Load(context.Background(), "../..")
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "github.com/petrel-os/petrel/sources/"
	for name, pkg := range p.Packages {
		if len(pkg.GoCommands) == 0 {
			continue
		}
		t.Run(name, func(t *testing.T) {
			args := []string{"list", "-deps", "-f", "{{.ImportPath}}"}
			for _, c := range pkg.GoCommands {
				args = append(args, "./cmd/"+c)
			}
			cmd := exec.Command("go", args...)
			cmd.Dir = "../.."
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			for _, imp := range strings.Fields(string(out)) {
				rest, ok := strings.CutPrefix(imp, prefix)
				if !ok {
					continue
				}
				group, _, _ := strings.Cut(rest, "/")
				if !slices.Contains(pkg.SourceGroups, group) {
					t.Errorf("packages/%s/package.toml: source-groups lacks %q (imported as %s)", name, group, path.Clean(imp))
				}
			}
		})
	}
}

// buildMachinePrograms are the commands of cmd/ that run on the build
// machine rather than in an image: the build system, and the API client
// developers and tests use against a VM.
var buildMachinePrograms = []string{"apiclient", "buildctl"}

// TestCmdShipsPrograms checks that cmd/ holds only programs the project
// ships: the build machine's, and those a package of this repository
// builds into an image (go-commands). A main that nothing ships, such as a
// second entry point of an agent of the multi-call binary, fails.
func TestCmdShipsPrograms(t *testing.T) {
	t.Parallel()
	p, err := project.Load(context.Background(), "../..")
	if err != nil {
		t.Fatal(err)
	}
	shipped := map[string]string{}
	for _, c := range buildMachinePrograms {
		shipped[c] = "the build machine"
	}
	for name, pkg := range p.Packages {
		for _, c := range pkg.GoCommands {
			shipped[c] = "packages/" + name
		}
	}
	entries, err := os.ReadDir("../../cmd")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		found = append(found, e.Name())
		if _, ok := shipped[e.Name()]; !ok {
			t.Errorf("cmd/%s is built by no package and is not a build-machine program: remove it or ship it", e.Name())
		}
	}
	for c, by := range shipped {
		if !slices.Contains(found, c) {
			t.Errorf("cmd/%s, shipped by %s, does not exist", c, by)
		}
	}
}
