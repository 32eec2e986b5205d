package projecttest_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/tools/project"
	"github.com/petrel-os/petrel/tools/project/projecttest"
)

var good = filepath.Join("..", "testdata", "good")

func TestCopyLoads(t *testing.T) {
	root := projecttest.Copy(t, good, nil)
	if _, err := project.Load(context.Background(), root); err != nil {
		t.Fatalf("Load(copy of %s): %v", good, err)
	}
}

func TestCopyOverlay(t *testing.T) {
	root := projecttest.Copy(t, good, map[string]string{
		"packages/os/os.spec":       "changed\n",
		"packages/new/package.toml": "new\n",
		"packages/kernel":           "",
	})
	for _, tt := range []struct {
		name, path, want string // want "" means: the path is gone
	}{
		{"replaced", "packages/os/os.spec", "changed\n"},
		{"added in a new directory", "packages/new/package.toml", "new\n"},
		{"deleted directory", "packages/kernel", ""},
		{"copied unchanged", "packages/glibc/glibc.spec", "from source"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(tt.path)))
			switch tt.want {
			case "":
				if _, serr := os.Stat(filepath.Join(root, tt.path)); !os.IsNotExist(serr) {
					t.Errorf("%s still exists (%v)", tt.path, serr)
				}
			case "from source":
				src, serr := os.ReadFile(filepath.Join(good, filepath.FromSlash(tt.path)))
				if err != nil || serr != nil || string(got) != string(src) {
					t.Errorf("%s = %q (%v), want the source's %q (%v)", tt.path, got, err, src, serr)
				}
			default:
				if err != nil || string(got) != tt.want {
					t.Errorf("%s = %q, %v; want %q", tt.path, got, err, tt.want)
				}
			}
		})
	}
}

// TestCopyLeavesSource checks that an overlay changes only the copy.
func TestCopyLeavesSource(t *testing.T) {
	before, err := os.ReadFile(filepath.Join(good, "Twoliter.toml"))
	if err != nil {
		t.Fatal(err)
	}
	projecttest.Copy(t, good, map[string]string{"Twoliter.toml": "schema-version = 7\n"})
	after, err := os.ReadFile(filepath.Join(good, "Twoliter.toml"))
	if err != nil || string(after) != string(before) {
		t.Errorf("source Twoliter.toml changed: %q, %v", after, err)
	}
}

func TestRepo(t *testing.T) {
	root := projecttest.Repo(t, good, map[string]string{"extra.txt": "x\n"})
	out, err := exec.Command("git", "-C", root, "log", "--format=%ct %s", "--name-only").CombinedOutput()
	if err != nil {
		t.Fatalf("git log: %v\n%s", err, out)
	}
	for _, want := range []string{"1704164645 fixture\n", "\nextra.txt\n", "\nTwoliter.toml\n"} {
		if !strings.Contains("\n"+string(out), want) {
			t.Errorf("git log =\n%s\nwant it to contain %q", out, want)
		}
	}
}
