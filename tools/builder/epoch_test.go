package builder

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/project"
)

// TestSourceDateEpoch checks the package's last commit time, the fallback
// to 0 outside a git work tree, and that another git failure is an error.
func TestSourceDateEpoch(t *testing.T) {
	testkit.IsolateGit(t)
	ctx := context.Background()
	files := map[string]string{"packages/a/a.spec": "x\n"}
	for _, tt := range []struct {
		name    string
		root    string
		want    int64
		wantErr string
	}{
		{"repository", testkit.Repo(t, testkit.Tree(t, files), nil), 1704164645, ""},
		{"exported tree", testkit.Tree(t, files), 0, ""},
		{"repository without commits", func() string {
			root := testkit.Tree(t, files)
			testkit.Git(t, root, "init", "-q")
			return root
		}(), 0, "does not have any commits yet"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pkg := &project.Package{Dir: filepath.Join(tt.root, "packages", "a")}
			got, err := sourceDateEpoch(ctx, tt.root, pkg)
			if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("sourceDateEpoch = %d, %v; want %d, error %q", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
