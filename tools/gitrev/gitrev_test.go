package gitrev

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

func TestRepository(t *testing.T) {
	testkit.IsolateGit(t)
	ctx := context.Background()
	root := testkit.Repo(t, testkit.Tree(t, map[string]string{"pkg/a": "a\n", "other/b": "b\n"}), nil)
	id, err := BuildID(ctx, root)
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(id) {
		t.Errorf("BuildID = %q, %v; want 8 hex digits", id, err)
	}
	if ts, ok, err := CommitTime(ctx, root); ts != 1704164645 || !ok || err != nil {
		t.Errorf("CommitTime = %d, %v, %v; want 1704164645 (2024-01-02T03:04:05Z)", ts, ok, err)
	}
	if ts, ok, err := CommitTime(ctx, root, "pkg"); ts != 1704164645 || !ok || err != nil {
		t.Errorf("CommitTime(pkg) = %d, %v, %v; want 1704164645", ts, ok, err)
	}
	if ts, ok, err := CommitTime(ctx, root, "untouched"); ts != 0 || ok || err != nil {
		t.Errorf("CommitTime(untouched) = %d, %v, %v; want 0, false, nil", ts, ok, err)
	}
	testkit.WriteFiles(t, root, map[string]string{"pkg/a": "changed\n"})
	if dirty, err := BuildID(ctx, root); err != nil || dirty != id+"-dirty" {
		t.Errorf("BuildID of a changed tree = %q, %v; want %q", dirty, err, id+"-dirty")
	}
}

// TestErrors checks that only a directory outside any git work tree is
// ErrNotRepository, and that other git failures carry git's message.
func TestErrors(t *testing.T) {
	testkit.IsolateGit(t)
	ctx := context.Background()
	empty := t.TempDir()
	testkit.Git(t, empty, "init", "-q")
	foreign := testkit.Repo(t, testkit.Tree(t, map[string]string{"f": "x\n"}), nil)
	if err := filepath.Walk(foreign, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, 4321, 4321)
	}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, dir string
		notRepo   bool
		want      string
	}{
		{"not a work tree", t.TempDir(), true, "not a git repository"},
		{"no commits", empty, false, "bad revision 'HEAD'"},
		{"owned by another user", foreign, false, "detected dubious ownership"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id, err := BuildID(ctx, tt.dir)
			if err == nil || id != "" {
				t.Fatalf("BuildID = %q, %v; want an error", id, err)
			}
			if errors.Is(err, ErrNotRepository) != tt.notRepo || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("BuildID error = %v (ErrNotRepository: %v); want %q in it, ErrNotRepository %v",
					err, errors.Is(err, ErrNotRepository), tt.want, tt.notRepo)
			}
			if _, _, err := CommitTime(ctx, tt.dir); err == nil || errors.Is(err, ErrNotRepository) != tt.notRepo {
				t.Errorf("CommitTime error = %v, want one (ErrNotRepository %v)", err, tt.notRepo)
			}
		})
	}
}

func TestNoGit(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := BuildID(context.Background(), t.TempDir())
	if err == nil || errors.Is(err, ErrNotRepository) || !strings.Contains(err.Error(), "executable file not found") {
		t.Errorf("BuildID without git = %v, want an error that says git is missing", err)
	}
}
