package testkit

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Tree writes files (slash-separated path → content) into a new temporary
// directory of t and returns it: a fake root, sysfs or /dev for a test.
func Tree(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	WriteFiles(t, dir, files)
	return dir
}

// WriteFiles writes files (slash-separated path → content, "" for an
// empty file) under dir with mode 0644, making missing directories.
func WriteFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatalf("write test tree: %v", err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatalf("write test tree: %v", err)
		}
	}
}

// Symlinks makes symbolic links under dir (slash-separated link path →
// target, as given), making missing directories.
func Symlinks(t testing.TB, dir string, links map[string]string) {
	t.Helper()
	for rel, target := range links {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatalf("write test tree: %v", err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatalf("write test tree: %v", err)
		}
	}
}

// Copy copies the tree at src into a new temporary directory of t, applies
// overlay (slash-separated path → content; "" deletes the path) and
// returns the copy's root: a fixture project one test loads as it is and
// the next with one file broken. The shared fixtures are
// tools/project/testdata/good (a small valid project: four packages, one
// kit, two variants) and tools/builder/testdata/fixture (a project that
// really builds).
func Copy(t testing.TB, src string, overlay map[string]string) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatalf("copy fixture %s: %v", src, err)
	}
	files := map[string]string{}
	for rel, content := range overlay {
		if content != "" {
			files[rel] = content
			continue
		}
		if err := os.RemoveAll(filepath.Join(dst, filepath.FromSlash(rel))); err != nil {
			t.Fatalf("apply overlay to fixture %s: %v", src, err)
		}
	}
	WriteFiles(t, dst, files)
	return dst
}

// Repo is Copy followed by a git repository holding the copy in one commit
// with fixed dates (see Git), so that SOURCE_DATE_EPOCH is fixed.
func Repo(t testing.TB, src string, overlay map[string]string) string {
	t.Helper()
	root := Copy(t, src, overlay)
	Git(t, root, "init", "-q")
	Git(t, root, "add", "-A")
	Git(t, root, "commit", "-q", "-m", "fixture")
	return root
}

// IsolateGit keeps the user's and the system's git configuration (which may
// trust every directory or sign every commit) out of the git commands the
// test and the code under test run. It sets environment variables, so the
// test cannot be parallel.
func IsolateGit(t *testing.T) {
	t.Helper()
	t.Setenv("GIT_CONFIG_GLOBAL", os.DevNull)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
}

// Git runs git with args in dir as a fixed test identity, with author and
// committer dates 2024-01-02T03:04:05Z and no signing, and returns its
// output.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	all := append([]string{"-c", "user.name=test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"}, args...)
	cmd := exec.Command(Tool(t, "git"), all...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2024-01-02T03:04:05Z", "GIT_AUTHOR_DATE=2024-01-02T03:04:05Z")
	return strings.TrimSpace(RunCmd(t, cmd))
}

// FileSHA256 returns the hex SHA-256 of the file at path.
func FileSHA256(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("hash file: %v", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("hash file %s: %v", path, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
