package image

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/petrel-os/petrel/sources/testkit"
)

// TestIdentify checks the build ID and epoch of a commit, the fallback
// outside a git work tree (and that it is logged), and that another git
// failure fails with git's message instead of taking the fallback.
func TestIdentify(t *testing.T) {
	testkit.IsolateGit(t)
	ctx := context.Background()
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))

	repo := testkit.Repo(t, testkit.Tree(t, map[string]string{"f": "x\n"}), nil)
	id, epoch, err := Identify(ctx, repo, logger)
	if err != nil || len(id) != 8 || id == NoBuildID || epoch != 1704164645 {
		t.Errorf("Identify(repository) = %q, %d, %v; want the short commit id and 1704164645", id, epoch, err)
	}

	id, epoch, err = Identify(ctx, t.TempDir(), logger)
	if err != nil || id != NoBuildID || epoch != 0 {
		t.Errorf("Identify(plain directory) = %q, %d, %v; want %s, 0, nil", id, epoch, err, NoBuildID)
	}
	if !strings.Contains(log.String(), "not a git work tree: build ID 00000000") {
		t.Errorf("the fallback was not logged: %q", log.String())
	}

	empty := t.TempDir()
	testkit.Git(t, empty, "init", "-q")
	id, _, err = Identify(ctx, empty, logger)
	if err == nil || id != "" || !strings.Contains(err.Error(), "bad revision 'HEAD'") {
		t.Errorf("Identify(repository without commits) = %q, %v; want git's error", id, err)
	}
}
