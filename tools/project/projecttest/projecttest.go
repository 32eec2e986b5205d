package projecttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Copy copies the tree at src into a new temporary directory of t, applies
// overlay (slash-separated path → content; "" deletes the path; missing
// directories are made) and returns the copy's root. Any failure fails t.
func Copy(t testing.TB, src string, overlay map[string]string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatalf("copy fixture project %s: %v", src, err)
	}
	for rel, content := range overlay {
		p := filepath.Join(dst, filepath.FromSlash(rel))
		if content == "" {
			if err := os.RemoveAll(p); err != nil {
				t.Fatalf("apply overlay to fixture project: %v", err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatalf("apply overlay to fixture project: %v", err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatalf("apply overlay to fixture project: %v", err)
		}
	}
	return dst
}

// Repo is Copy followed by a git repository holding the copy in one
// commit made by Git, so that the commit time (SOURCE_DATE_EPOCH) is fixed.
func Repo(t testing.TB, src string, overlay map[string]string) string {
	t.Helper()
	root := Copy(t, src, overlay)
	Git(t, root, "init", "-q")
	Git(t, root, "add", "-A")
	Git(t, root, "commit", "-q", "-m", "fixture")
	return root
}

// Git runs git with args in dir as a fixed test identity, with author and
// committer dates 2024-01-02T03:04:05Z and no signing.
func Git(t testing.TB, dir string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git not found: install the Debian package git")
	}
	cmd := exec.Command("git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2024-01-02T03:04:05Z", "GIT_AUTHOR_DATE=2024-01-02T03:04:05Z")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
