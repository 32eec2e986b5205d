package awstest

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestNotLinkedIntoCommands fails when a command of the module links this
// package or tools/sbom/sbomtest: test support must not ship.
func TestNotLinkedIntoCommands(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./cmd/...")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/...: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/petrel-os/petrel/tools/buildctl") {
		t.Fatalf("go list -deps ./cmd/... lacks tools/buildctl: the check checks nothing:\n%s", out)
	}
	for _, pkg := range []string{"github.com/petrel-os/petrel/tools/awstest", "github.com/petrel-os/petrel/tools/sbom/sbomtest"} {
		if slices.Contains(deps, pkg) {
			t.Errorf("a command links %s; only tests may import it", pkg)
		}
	}
}
