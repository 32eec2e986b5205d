package builder

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
	"github.com/petrel-os/petrel/tools/project"
)

// tomlSum returns the project's go.sum lines of BurntSushi/toml v1.6.0,
// a module every machine that built buildctl has in its module cache.
func tomlSum(t *testing.T) string {
	t.Helper()
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
	return strings.Join(lines, "\n") + "\n"
}

// TestDownloadModules checks that a build of Go commands first fills an
// empty module cache, as on a fresh machine: the sandboxed build cannot
// download (GOPROXY=off, read-only cache).
func TestDownloadModules(t *testing.T) {
	goCmd := testkit.Tool(t, "go")
	root := t.TempDir()
	files := map[string]string{
		"go.mod": "module example.com/m\n\ngo 1.26\n\nrequire github.com/BurntSushi/toml v1.6.0\n",
		"go.sum": tomlSum(t),
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
		if err := b.downloadModules(context.Background(), root); err != nil {
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
	if err := bad.downloadModules(context.Background(), bad.Project.Root); err == nil || !strings.Contains(err.Error(), "example.invalid/none") {
		t.Errorf("downloadModules of a missing module: %v, want an error naming it", err)
	}

	// A go-module package pins its modules by its go.sum: a hash that does
	// not match what the proxy serves (here: what the cache holds) fails.
	pkgDir := t.TempDir()
	files["go.sum"] = strings.Replace(files["go.sum"], "h1:", "h1:AAAA", 1)
	testkit.WriteFiles(t, pkgDir, files)
	err := b.downloadModules(context.Background(), pkgDir)
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") || !strings.Contains(err.Error(), pkgDir) {
		t.Errorf("downloadModules with a wrong go.sum hash: %v, want a checksum mismatch naming %s", err, pkgDir)
	}
}

// TestGoModulePackage builds a go-module package in the sandbox: its own
// go.mod names a module that only the host's module cache has (the
// sandbox has no network), and the program it builds runs. Its key
// follows its own files: a change to another package leaves it cached,
// a change to its go.mod rebuilds it.
func TestGoModulePackage(t *testing.T) {
	testkit.Tool(t, "go")
	root := fixture(t, map[string]string{
		"packages/hello/package.toml": "go-module = true\n",
		"packages/hello/go.mod":       "module example.com/hello\n\ngo 1.26\n\nrequire github.com/BurntSushi/toml v1.6.0\n",
		"packages/hello/go.sum":       tomlSum(t),
		"packages/hello/main.go": "package main\n\nimport (\n\t\"fmt\"\n\n\t\"github.com/BurntSushi/toml\"\n)\n\n" +
			"func main() {\n\tvar v struct{ Greeting string }\n\ttoml.Decode(`greeting = \"hello from a go-module package\"`, &v)\n\tfmt.Println(v.Greeting)\n}\n",
		"packages/hello/hello.spec": `Name: %{_cross_os}hello
Version: 1.0
Release: 1
Summary: A Go program of a go-module package
License: MIT
Source0: go.mod
Source1: go.sum
Source2: main.go

%description
A Go program of a go-module package.

%build
mkdir -p src && cp %{S:0} %{S:1} %{S:2} src/ && cd src
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly GOPROXY=off GOWORK=off
export GOCACHE="%{_petrel_gocache}" GOMODCACHE="%{_petrel_gomodcache}"
go build -trimpath -o ../hello .

%install
install -D -m 0755 hello %{buildroot}/usr/bin/hello

%files
/usr/bin/hello
`,
	})
	buildDir := filepath.Join(t.TempDir(), "build")
	b := newBuilder(t, root, buildDir, nil)
	if rep := build(t, b, "hello"); !slices.Equal(rep.Built, []string{"hello"}) {
		t.Fatalf("first Build built %q, want [hello]", rep.Built)
	}
	rpms, _ := b.RPMs("hello")
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", "rpm2cpio "+rpms[0]+" | cpio -idm --quiet ./usr/bin/hello && ./usr/bin/hello")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || string(out) != "hello from a go-module package\n" {
		t.Errorf("the built program printed %q, %v", out, err)
	}

	if err := os.WriteFile(filepath.Join(root, "packages/base/motd"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if rep := build(t, newBuilder(t, root, buildDir, nil), "hello", "base"); !slices.Equal(rep.Cached, []string{"hello"}) {
		t.Errorf("after editing another package: built %q cached %q, want hello cached", rep.Built, rep.Cached)
	}
	gomod := filepath.Join(root, "packages/hello/go.mod")
	data, _ := os.ReadFile(gomod)
	if err := os.WriteFile(gomod, append([]byte("// a comment\n"), data...), 0o644); err != nil {
		t.Fatal(err)
	}
	if rep := build(t, newBuilder(t, root, buildDir, nil), "hello"); !slices.Equal(rep.Built, []string{"hello"}) {
		t.Errorf("after editing hello's go.mod: built %q, want [hello]", rep.Built)
	}
}
