package testkit

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
)

const importPath = "github.com/petrel-os/petrel/sources/testkit"

// importers lists the packages of the module at dir whose non-test files
// import testkit or one of its test-support packages (sources/testkit/...),
// other than those packages themselves.
func importers(t *testing.T, dir string) []string {
	t.Helper()
	cmd := exec.Command(Tool(t, "go"), "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, "./...")
	cmd.Dir = dir
	var bad []string
	for _, line := range strings.Split(strings.TrimSpace(RunCmd(t, cmd)), "\n") {
		f := strings.Fields(line)
		isKit := func(p string) bool { return p == importPath || strings.HasPrefix(p, importPath+"/") }
		if len(f) > 0 && !isKit(f[0]) && slices.ContainsFunc(f[1:], isKit) {
			bad = append(bad, f[0])
		}
	}
	return bad
}

// TestNotImportedByProductionCode fails when a non-test file of the
// module imports testkit: test support must not ship in a binary.
func TestNotImportedByProductionCode(t *testing.T) {
	t.Parallel()
	if bad := importers(t, RepoRoot(t)); len(bad) > 0 {
		t.Errorf("production packages import %s (only _test.go files may): %v", importPath, bad)
	}
}

// TestImportersFindsProductionImport checks the check itself on a small
// module in which a command imports testkit.
func TestImportersFindsProductionImport(t *testing.T) {
	t.Parallel()
	dir := Tree(t, map[string]string{
		"go.mod":                     "module github.com/petrel-os/petrel\n\ngo 1.26\n",
		"sources/testkit/kit.go":     "package testkit\n",
		"sources/ok/ok.go":           "package ok\n",
		"sources/ok/ok_test.go":      "package ok\n\nimport _ \"" + importPath + "\"\n",
		"cmd/bad/main.go":            "package main\n\nimport _ \"" + importPath + "\"\n\nfunc main() {}\n",
		"sources/other/other.go":     "package other\n\nimport _ \"" + importPath + "\"\n",
		"sources/other/doc.go":       "// Package other imports testkit in production code.\npackage other\n",
		"tools/clean/clean.go":       "package clean\n",
		"tools/clean/x_test.go":      "package clean_test\n\nimport _ \"" + importPath + "\"\n",
		"tools/sub/sub.go":           "package sub\n\nimport _ \"" + importPath + "/sub\"\n",
		"sources/testkit/kit2.go":    "package testkit\n",
		"sources/testkit/sub/sub.go": "// Package sub is test support built on testkit.\npackage sub\n\nimport _ \"" + importPath + "\"\n",
	})
	got := importers(t, dir)
	want := []string{"github.com/petrel-os/petrel/cmd/bad", "github.com/petrel-os/petrel/sources/other", "github.com/petrel-os/petrel/tools/sub"}
	if !slices.Equal(got, want) {
		t.Errorf("importers = %v, want %v", got, want)
	}
}

// recorder is a testing.TB whose Fatalf records the message and ends the
// goroutine, so that a test can check how a helper fails.
type recorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.msg = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

// fatal runs fn with a recorder and returns the message it failed with,
// "" when it did not fail.
func fatal(t *testing.T, fn func(tb testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r.msg
}

func TestTool(t *testing.T) {
	if p := Tool(t, "git"); !filepath.IsAbs(p) {
		t.Errorf("Tool(git) = %q, want an absolute path", p)
	}
	if p := Tool(t, "mkfs.ext4"); !strings.HasSuffix(p, "/mkfs.ext4") {
		t.Errorf("Tool(mkfs.ext4) = %q, want a path (in sbin when PATH lacks it)", p)
	}
	const ovmf = "/usr/share/OVMF/OVMF_CODE.fd"
	if p := Tool(t, ovmf); p != ovmf {
		t.Errorf("Tool(%s) = %q, want the file itself", ovmf, p)
	}
	for _, tt := range []struct {
		name, tool, path, want string
	}{
		{"not listed", "frobnicate", "", "frobnicate is not in Twoliter.toml's [[sdk.tool]] list: add it with its Debian package"},
		{"missing command", "createrepo_c", "/nonexistent", "createrepo_c not found: install the Debian package createrepo-c"},
		{"listed file", "/usr/share/OVMF/none.fd", "", "is not in Twoliter.toml's [[sdk.tool]] list"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.path != "" {
				t.Setenv("PATH", tt.path)
			}
			if got := fatal(t, func(tb testing.TB) { Tool(tb, tt.tool) }); !strings.Contains(got, tt.want) {
				t.Errorf("Tool(%s) failed with %q, want %q", tt.tool, got, tt.want)
			}
		})
	}
}

func TestRunCmd(t *testing.T) {
	t.Parallel()
	if got := Run(t, "git", "--version"); !strings.HasPrefix(got, "git version") {
		t.Errorf("Run(git --version) = %q", got)
	}
	msg := fatal(t, func(tb testing.TB) {
		RunCmd(tb, exec.Command("sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"))
	})
	for _, want := range []string{"sh -c echo to-stdout", "exit status 3", "stdout:\nto-stdout\n", "stderr:\nto-stderr\n"} {
		if !strings.Contains(msg, want) {
			t.Errorf("RunCmd of a failing command failed with %q, want %q in it", msg, want)
		}
	}
}

func TestTree(t *testing.T) {
	t.Parallel()
	dir := Tree(t, map[string]string{"sys/block/vda/size": "8192\n", "dev/vda": ""})
	Symlinks(t, dir, map[string]string{"sys/class/block/vda": "../../block/vda"})
	if b, err := os.ReadFile(filepath.Join(dir, "sys/class/block/vda/size")); err != nil || string(b) != "8192\n" {
		t.Errorf("size through the link = %q, %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "dev/vda")); err != nil || st.Size() != 0 {
		t.Errorf("dev/vda = %v, %v; want an empty file", st, err)
	}
}

func TestCopy(t *testing.T) {
	t.Parallel()
	src := Tree(t, map[string]string{"a/keep": "keep\n", "a/change": "old\n", "gone/x": "x\n"})
	dst := Copy(t, src, map[string]string{"a/change": "new\n", "gone": "", "new/dir/f": "f\n"})
	for _, tt := range []struct{ path, want string }{ // want "" means: the path is gone
		{"a/keep", "keep\n"}, {"a/change", "new\n"}, {"gone", ""}, {"new/dir/f", "f\n"},
	} {
		b, err := os.ReadFile(filepath.Join(dst, tt.path))
		if tt.want == "" {
			if _, serr := os.Stat(filepath.Join(dst, tt.path)); !os.IsNotExist(serr) {
				t.Errorf("%s still exists (%v)", tt.path, serr)
			}
			continue
		}
		if err != nil || string(b) != tt.want {
			t.Errorf("%s = %q, %v; want %q", tt.path, b, err, tt.want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(src, "a/change")); err != nil || string(b) != "old\n" {
		t.Errorf("the overlay changed the source: %q, %v", b, err)
	}
}

func TestRepo(t *testing.T) {
	t.Parallel()
	root := Repo(t, Tree(t, map[string]string{"f": "x\n"}), nil)
	if got := Git(t, root, "log", "--format=%ct %s"); got != "1704164645 fixture" {
		t.Errorf("git log = %q, want one commit at 2024-01-02T03:04:05Z named fixture", got)
	}
	if got := Git(t, root, "status", "--porcelain"); got != "" {
		t.Errorf("git status = %q, want a clean tree", got)
	}
}

func TestCheckMain(t *testing.T) {
	main := func(_ context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
		in, _ := io.ReadAll(stdin)
		fmt.Fprintf(stdout, "args %q stdin %q\n", args, in)
		if len(args) > 0 && args[0] == "fail" {
			fmt.Fprintln(stderr, "prog: failed")
			return 1
		}
		return 0
	}
	CheckMain(t, main, []MainCase{
		{Name: "plain", Args: []string{"a"}, Code: 0, Out: `args ["a"]`},
		{Name: "stdin", Stdin: "in", Code: 0, Out: `stdin "in"`},
		{Name: "failure", Args: []string{"fail"}, Code: 1, Err: "prog: failed"},
	})
	var ran []string
	CheckMain(t, NoStdin(func(_ context.Context, args []string, stdout, _ io.Writer) int {
		ran = append(ran, args...)
		return 0
	}), []MainCase{{Name: "no stdin", Args: []string{"x"}}})
	t.Cleanup(func() {
		if !slices.Equal(ran, []string{"x"}) {
			t.Errorf("NoStdin ran %q, want [x]", ran)
		}
	})
}
