package builder

import (
	"context"
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
