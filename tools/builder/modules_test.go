package builder

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/project"
)

// TestDownloadModules checks that a build of Go commands first fills an
// empty module cache, as on a fresh machine: the sandboxed build cannot
// download (GOPROXY=off, read-only cache).
func TestDownloadModules(t *testing.T) {
	goCmd := testkit.Tool(t, "go")
	root := t.TempDir()
	sum, err := os.ReadFile("../../go.sum")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(sum), "\n") {
		if strings.HasPrefix(l, "github.com/BurntSushi/toml v1.6.0") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("go.sum has %d lines for BurntSushi/toml v1.6.0, want 2", len(lines))
	}
	files := map[string]string{
		"go.mod": "module example.com/m\n\ngo 1.26\n\nrequire github.com/BurntSushi/toml v1.6.0\n",
		"go.sum": strings.Join(lines, "\n") + "\n",
	}
	testkit.WriteFiles(t, root, files)
	cache := t.TempDir()
	t.Setenv("GOMODCACHE", cache)
	t.Setenv("GOFLAGS", "-modcacherw") // so that TempDir can remove the cache
	b := &Builder{Project: &project.Project{Root: root}, goBin: filepath.Dir(goCmd)}
	zip := filepath.Join(cache, "cache", "download", "github.com", "!burnt!sushi", "toml", "@v", "v1.6.0.zip")
	if _, err := os.Stat(zip); err == nil {
		t.Fatal("module in the cache before the download")
	}
	for range 2 { // the second call is a no-op
		if err := b.downloadModules(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(zip); err != nil {
		t.Errorf("module not in the cache after downloadModules: %v", err)
	}

	// A go.mod naming a module that does not exist fails with go's message.
	bad := &Builder{Project: &project.Project{Root: t.TempDir()}, goBin: filepath.Dir(goCmd)}
	if err := os.WriteFile(filepath.Join(bad.Project.Root, "go.mod"), []byte("module example.com/m\n\ngo 1.26\n\nrequire example.invalid/none v1.0.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := bad.downloadModules(context.Background()); err == nil || !strings.Contains(err.Error(), "example.invalid/none") {
		t.Errorf("downloadModules of a missing module: %v, want an error naming it", err)
	}
}
